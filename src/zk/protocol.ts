/**
 * The opcode table: for each opcode, the request a client sends and the
 * response body of a successful reply (null: no body), ZooKeeper's
 * four-letter short name (`lop=` in `cons`), whether it is an update (a
 * change of the tree or the sessions, whose latencies `mntr` reports apart
 * from reads'), and whether a multi (writes) or a multiRead (reads) may
 * carry it. Handlers decode requests through it, multi its sub-requests,
 * the admin views their names and kinds, and codec tests recorded frames.
 *
 * Multi (14) and multiRead (22) are sequences of `MultiHeader` + record and
 * are read by their own code; they are listed with null records.
 *
 * @module
 */

import type { JuteType } from "../jute/schema.ts";
import { OpCode } from "./constants.ts";
import * as R from "./records.ts";

/** What the table says of one opcode. */
export interface OpInfo {
  /** Its name in {@link OpCode}. */
  name: keyof typeof OpCode;
  /** ZooKeeper's four-letter short name; each is unique. */
  short: string;
  request: JuteType<unknown> | null;
  response: JuteType<unknown> | null;
  /** A change of the tree or the sessions (ZooKeeper's "update" requests). */
  update: boolean;
  /** The multi that may carry it as a sub-request: a multi's writes, a multiRead's reads. */
  multi?: "write" | "read";
}

type Row = [
  name: keyof typeof OpCode,
  short: string,
  request: JuteType<unknown> | null,
  response: JuteType<unknown> | null,
  kind?: "update" | "update, in a multi" | "in a multiRead",
];

const j = <T>(type: JuteType<T>) => type as JuteType<unknown>;

/** One row an opcode, as in the protocol document §5. */
const ROWS: Row[] = [
  ["notification", "NOTI", null, null],
  ["create", "CREA", j(R.CreateRequest), j(R.CreateResponse), "update, in a multi"],
  ["delete", "DELE", j(R.DeleteRequest), null, "update, in a multi"],
  ["exists", "EXIS", j(R.ExistsRequest), j(R.ExistsResponse)],
  ["getData", "GETD", j(R.GetDataRequest), j(R.GetDataResponse), "in a multiRead"],
  ["setData", "SETD", j(R.SetDataRequest), j(R.SetDataResponse), "update, in a multi"],
  ["getACL", "GETA", j(R.GetACLRequest), j(R.GetACLResponse)],
  ["setACL", "SETA", j(R.SetACLRequest), j(R.SetACLResponse), "update"],
  ["getChildren", "GETC", j(R.GetChildrenRequest), j(R.GetChildrenResponse), "in a multiRead"],
  ["sync", "SYNC", j(R.SyncRequest), j(R.SyncResponse)],
  ["ping", "PING", null, null],
  ["getChildren2", "GET2", j(R.GetChildren2Request), j(R.GetChildren2Response)],
  ["check", "CKVR", j(R.CheckVersionRequest), null, "update, in a multi"],
  ["multi", "MULT", null, null, "update"],
  ["create2", "CRE2", j(R.CreateRequest), j(R.Create2Response), "update, in a multi"],
  ["reconfig", "RECO", j(R.ReconfigRequest), j(R.GetDataResponse), "update"],
  ["checkWatches", "CHKW", j(R.CheckWatchesRequest), null],
  ["removeWatches", "REMW", j(R.RemoveWatchesRequest), null],
  ["createContainer", "CCON", j(R.CreateRequest), j(R.Create2Response), "update, in a multi"],
  ["deleteContainer", "DCON", null, null, "update"],
  ["createTTL", "CTTL", j(R.CreateTTLRequest), j(R.Create2Response), "update, in a multi"],
  ["multiRead", "MLTR", null, null],
  ["auth", "AUTH", j(R.AuthPacket), null],
  ["setWatches", "SETW", j(R.SetWatches), null],
  ["sasl", "SASL", j(R.GetSASLRequest), j(R.SetSASLResponse)],
  ["getEphemerals", "GETE", j(R.GetEphemeralsRequest), j(R.GetEphemeralsResponse)],
  [
    "getAllChildrenNumber",
    "GACN",
    j(R.GetAllChildrenNumberRequest),
    j(R.GetAllChildrenNumberResponse),
  ],
  ["setWatches2", "STW2", j(R.SetWatches2), null],
  ["addWatch", "ADDW", j(R.AddWatchRequest), j(R.ErrorResponse)],
  ["whoAmI", "WHAM", null, j(R.WhoAmIResponse)],
  ["createSession", "SESS", null, null, "update"],
  ["closeSession", "CLOS", null, null, "update"],
];

/** Every opcode, by its number. */
export const OPS: ReadonlyMap<number, OpInfo> = new Map(
  ROWS.map(([name, short, request, response, kind]) => [OpCode[name], {
    name,
    short,
    request,
    response,
    update: kind?.startsWith("update") ?? false,
    multi: kind === "update, in a multi" ? "write" : kind === "in a multiRead" ? "read" : undefined,
  }]),
);

/** The records of one opcode. */
export type OpRecords = Pick<OpInfo, "request" | "response">;

/** Request and response records by opcode (the table's records). */
export const PROTOCOL: ReadonlyMap<number, OpRecords> = OPS;
