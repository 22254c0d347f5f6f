/**
 * The one error type a request handler throws to answer a client with a
 * ZooKeeper error code. Anything else thrown by a handler is logged and
 * answered as a generic system error, never with a stack trace.
 *
 * @module
 */

import { Code, codeName } from "./constants.ts";

/** A ZooKeeper error reply: `code` goes into the reply header's `err`. */
export class ZkError extends Error {
  override name = "ZkError";
  /** The `KeeperException.Code` value sent to the client. */
  readonly code: number;
  /** The path the request was about, for logs. */
  readonly path?: string;

  /** An error with ZooKeeper code `code`, optionally about `path`. */
  constructor(code: number, path?: string, message?: string) {
    super(message ?? `${codeName(code)}${path === undefined ? "" : ` ${path}`}`);
    this.code = code;
    this.path = path;
  }
}

/** Shorthand constructors for the codes handlers raise most. */
export const Errors = {
  noNode: (path: string) => new ZkError(Code.NONODE, path),
  nodeExists: (path: string) => new ZkError(Code.NODEEXISTS, path),
  badVersion: (path: string) => new ZkError(Code.BADVERSION, path),
  notEmpty: (path: string) => new ZkError(Code.NOTEMPTY, path),
  badArguments: (path?: string, why?: string) =>
    new ZkError(Code.BADARGUMENTS, path, why && `BADARGUMENTS ${path}: ${why}`),
  noChildrenForEphemerals: (path: string) => new ZkError(Code.NOCHILDRENFOREPHEMERALS, path),
  invalidACL: (path: string) => new ZkError(Code.INVALIDACL, path),
  unimplemented: (what: string) =>
    new ZkError(Code.UNIMPLEMENTED, undefined, `UNIMPLEMENTED ${what}`),
} as const;
