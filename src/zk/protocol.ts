/**
 * Which records each opcode carries: the request a client sends and the
 * response body of a successful reply (null: no body). Handlers decode
 * requests through this table, and codec tests use it to decode recorded
 * frames.
 *
 * Multi (14) and multiRead (22) are sequences of `MultiHeader` + record and
 * are read by their own code; they are listed with null records.
 *
 * @module
 */

import type { JuteType } from "../jute/schema.ts";
import { OpCode } from "./constants.ts";
import * as R from "./records.ts";

/** The records of one opcode. */
export interface OpRecords {
  request: JuteType<unknown> | null;
  response: JuteType<unknown> | null;
}

function pair<Q, S>(request: JuteType<Q> | null, response: JuteType<S> | null): OpRecords {
  return { request, response } as OpRecords;
}

/** Request and response records by opcode, as in the protocol document §5. */
export const PROTOCOL: ReadonlyMap<number, OpRecords> = new Map([
  [OpCode.create, pair(R.CreateRequest, R.CreateResponse)],
  [OpCode.delete, pair(R.DeleteRequest, null)],
  [OpCode.exists, pair(R.ExistsRequest, R.ExistsResponse)],
  [OpCode.getData, pair(R.GetDataRequest, R.GetDataResponse)],
  [OpCode.setData, pair(R.SetDataRequest, R.SetDataResponse)],
  [OpCode.getACL, pair(R.GetACLRequest, R.GetACLResponse)],
  [OpCode.setACL, pair(R.SetACLRequest, R.SetACLResponse)],
  [OpCode.getChildren, pair(R.GetChildrenRequest, R.GetChildrenResponse)],
  [OpCode.sync, pair(R.SyncRequest, R.SyncResponse)],
  [OpCode.ping, pair(null, null)],
  [OpCode.getChildren2, pair(R.GetChildren2Request, R.GetChildren2Response)],
  [OpCode.check, pair(R.CheckVersionRequest, null)],
  [OpCode.multi, pair(null, null)],
  [OpCode.create2, pair(R.CreateRequest, R.Create2Response)],
  [OpCode.reconfig, pair(R.ReconfigRequest, R.GetDataResponse)],
  [OpCode.checkWatches, pair(R.CheckWatchesRequest, null)],
  [OpCode.removeWatches, pair(R.RemoveWatchesRequest, null)],
  [OpCode.createContainer, pair(R.CreateRequest, R.Create2Response)],
  [OpCode.createTTL, pair(R.CreateTTLRequest, R.Create2Response)],
  [OpCode.multiRead, pair(null, null)],
  [OpCode.auth, pair(R.AuthPacket, null)],
  [OpCode.setWatches, pair(R.SetWatches, null)],
  [OpCode.sasl, pair(R.GetSASLRequest, R.SetSASLResponse)],
  [OpCode.getEphemerals, pair(R.GetEphemeralsRequest, R.GetEphemeralsResponse)],
  [
    OpCode.getAllChildrenNumber,
    pair(R.GetAllChildrenNumberRequest, R.GetAllChildrenNumberResponse),
  ],
  [OpCode.setWatches2, pair(R.SetWatches2, null)],
  [OpCode.addWatch, pair(R.AddWatchRequest, R.ErrorResponse)],
  [OpCode.whoAmI, pair(null, R.WhoAmIResponse)],
  [OpCode.closeSession, pair(null, null)],
]);
