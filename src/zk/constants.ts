/**
 * Protocol constants with the names of ZooKeeper's Java sources:
 * `ZooDefs.OpCode`, `KeeperException.Code`, `Watcher.Event.EventType`,
 * `Watcher.Event.KeeperState`, `CreateMode` flags and `ZooDefs.Perms`.
 *
 * @module
 */

/** Request types (`ZooDefs.OpCode`). */
export const OpCode = {
  notification: 0,
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  check: 13,
  multi: 14,
  create2: 15,
  reconfig: 16,
  checkWatches: 17,
  removeWatches: 18,
  createContainer: 19,
  deleteContainer: 20,
  createTTL: 21,
  multiRead: 22,
  auth: 100,
  setWatches: 101,
  sasl: 102,
  getEphemerals: 103,
  getAllChildrenNumber: 104,
  setWatches2: 105,
  addWatch: 106,
  whoAmI: 107,
  createSession: -10,
  closeSession: -11,
  error: -1,
} as const;

/** An opcode's numeric value. */
export type OpCode = (typeof OpCode)[keyof typeof OpCode];

/** Name of an opcode, for logs (`"getData"`), or `op<N>` when unknown. */
export function opName(type: number): string {
  return OP_NAMES.get(type) ?? `op${type}`;
}

/** Opcode → name, made once: {@link opName} runs several times per request. */
const OP_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(OpCode)) {
  if (!OP_NAMES.has(value)) OP_NAMES.set(value, name); // the first name, as before
}

/** Error codes (`KeeperException.Code`). */
export const Code = {
  OK: 0,
  SYSTEMERROR: -1,
  RUNTIMEINCONSISTENCY: -2,
  DATAINCONSISTENCY: -3,
  CONNECTIONLOSS: -4,
  MARSHALLINGERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
  UNKNOWNSESSION: -12,
  NEWCONFIGNOQUORUM: -13,
  RECONFIGINPROGRESS: -14,
  APIERROR: -100,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NOCHILDRENFOREPHEMERALS: -108,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  INVALIDCALLBACK: -113,
  INVALIDACL: -114,
  AUTHFAILED: -115,
  SESSIONMOVED: -118,
  NOTREADONLY: -119,
  EPHEMERALONLOCALSESSION: -120,
  NOWATCHER: -121,
  REQUESTTIMEOUT: -122,
  RECONFIGDISABLED: -123,
  SESSIONCLOSEDREQUIRESASLAUTH: -124,
  QUOTAEXCEEDED: -125,
  THROTTLEDOP: -127,
} as const;

/** An error code's numeric value. */
export type Code = (typeof Code)[keyof typeof Code];

/** Name of an error code, for logs (`"NONODE"`). */
export function codeName(code: number): string {
  for (const [name, value] of Object.entries(Code)) if (value === code) return name;
  return `code${code}`;
}

/** Watch event types (`Watcher.Event.EventType`). */
export const EventType = {
  None: -1,
  NodeCreated: 1,
  NodeDeleted: 2,
  NodeDataChanged: 3,
  NodeChildrenChanged: 4,
} as const;

/** A watch event type's numeric value. */
export type EventType = (typeof EventType)[keyof typeof EventType];

/** Session states (`Watcher.Event.KeeperState`); servers only send SyncConnected. */
export const KeeperState = { SyncConnected: 3 } as const;

/** Special request/reply xids. */
export const Xid = {
  notification: -1,
  ping: -2,
  auth: -4,
  setWatches: -8,
} as const;

/** Create flags (`CreateMode`). */
export const CreateFlag = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
  CONTAINER: 4,
  PERSISTENT_WITH_TTL: 5,
  PERSISTENT_SEQUENTIAL_WITH_TTL: 6,
} as const;

/** Permission bits (`ZooDefs.Perms`). */
export const Perms = {
  READ: 1,
  WRITE: 2,
  CREATE: 4,
  DELETE: 8,
  ADMIN: 16,
  ALL: 31,
} as const;
