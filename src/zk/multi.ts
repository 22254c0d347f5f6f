/**
 * The multi (14) encoding: a sequence of `MultiHeader` + record, ended by a
 * header with `done = true`. These are the only records not declared as a
 * fixed field list, because their shape depends on each header's type.
 *
 * @module
 */

import { JuteDecodeError, type JuteReader } from "../jute/reader.ts";
import type { JuteWriter } from "../jute/writer.ts";
import { OPS } from "./protocol.ts";
import * as R from "./records.ts";

/** One decoded sub-request of a multi. */
export type SubRequest =
  | { type: 1 | 15 | 19; req: R.CreateRequestT }
  | { type: 21; req: R.CreateRequestT & { ttl: bigint } }
  | { type: 2; req: { path: string | null; version: number } }
  | { type: 5; req: { path: string | null; data: Uint8Array | null; version: number } }
  | { type: 13; req: { path: string | null; version: number } }
  | { type: 4 | 8; req: { path: string | null; watch: boolean } };

/** Whether a sub-request only reads (getData, getChildren): allowed in multiRead only. */
export function isRead(sub: SubRequest): sub is Extract<SubRequest, { type: 4 | 8 }> {
  return OPS.get(sub.type)?.multi === "read";
}

/** Reads the sub-requests of a multi or multiRead request (the opcode table says which may stand in one). */
export function readMultiRequest(r: JuteReader): SubRequest[] {
  const ops: SubRequest[] = [];
  for (;;) {
    const h = R.MultiHeader.read(r);
    if (h.done) return ops;
    const op = OPS.get(h.type);
    if (!op?.multi || !op.request) {
      throw new JuteDecodeError(`multi sub-operation of unknown type ${h.type}`);
    }
    ops.push({ type: h.type, req: op.request.read(r) } as SubRequest);
  }
}

/** One result of a multi, ready to encode. */
export type SubResult =
  | { type: 1; path: string }
  | { type: 15; path: string; stat: R.Stat }
  | { type: 2 | 13 }
  | { type: 5; stat: R.Stat }
  | { type: 4; data: Uint8Array | null; stat: R.Stat }
  | { type: 8; children: string[] }
  | { type: -1; err: number };

/** Writes the results of a multi, then the closing header. */
export function writeMultiResponse(w: JuteWriter, results: SubResult[]): void {
  for (const res of results) {
    R.MultiHeader.write(w, { type: res.type, done: false, err: res.type === -1 ? res.err : 0 });
    switch (res.type) {
      case 1:
        R.CreateResponse.write(w, { path: res.path });
        break;
      case 15:
        R.Create2Response.write(w, { path: res.path, stat: res.stat });
        break;
      case 5:
        R.SetDataResponse.write(w, { stat: res.stat });
        break;
      case 4:
        R.GetDataResponse.write(w, { data: res.data, stat: res.stat });
        break;
      case 8:
        R.GetChildrenResponse.write(w, { children: res.children });
        break;
      case -1:
        R.ErrorResponse.write(w, { err: res.err });
        break;
    }
  }
  R.MultiHeader.write(w, { type: -1, done: true, err: -1 });
}
