/**
 * Every record of the ZooKeeper client protocol, declared once in wire order
 * with the names of `zookeeper.jute`. Encoders, decoders and TypeScript types
 * are derived from these declarations (see `src/jute/schema.ts`).
 *
 * @module
 */

import { bool, buffer, type Infer, int, long, record, ustring, vector } from "../jute/schema.ts";

/** `Id`: an authentication scheme and an identity within it. */
export const Id = record("Id", { scheme: ustring, id: ustring });
/** `ACL`: permission bits granted to an Id. */
export const ACL = record("ACL", { perms: int, id: Id });
/** `Stat`: the 11 metadata fields of a znode (68 bytes). */
export const Stat = record("Stat", {
  czxid: long,
  mzxid: long,
  ctime: long,
  mtime: long,
  version: int,
  cversion: int,
  aversion: int,
  ephemeralOwner: long,
  dataLength: int,
  numChildren: int,
  pzxid: long,
});

/** First frame of a connection, without the optional trailing readOnly byte. */
export const ConnectRequest = record("ConnectRequest", {
  protocolVersion: int,
  lastZxidSeen: long,
  timeOut: int,
  sessionId: long,
  passwd: buffer,
});
/** First server frame, without the trailing readOnly byte. */
export const ConnectResponse = record("ConnectResponse", {
  protocolVersion: int,
  timeOut: int,
  sessionId: long,
  passwd: buffer,
});

/** Header of every request after the handshake. */
export const RequestHeader = record("RequestHeader", { xid: int, type: int });
/** Header of every reply after the handshake. */
export const ReplyHeader = record("ReplyHeader", { xid: int, zxid: long, err: int });

export const CreateRequest = record("CreateRequest", {
  path: ustring,
  data: buffer,
  acl: vector(ACL),
  flags: int,
});
export const CreateTTLRequest = record("CreateTTLRequest", {
  path: ustring,
  data: buffer,
  acl: vector(ACL),
  flags: int,
  ttl: long,
});
export const CreateResponse = record("CreateResponse", { path: ustring });
export const Create2Response = record("Create2Response", { path: ustring, stat: Stat });
export const DeleteRequest = record("DeleteRequest", { path: ustring, version: int });
export const ExistsRequest = record("ExistsRequest", { path: ustring, watch: bool });
export const ExistsResponse = record("ExistsResponse", { stat: Stat });
export const GetDataRequest = record("GetDataRequest", { path: ustring, watch: bool });
export const GetDataResponse = record("GetDataResponse", { data: buffer, stat: Stat });
export const SetDataRequest = record("SetDataRequest", {
  path: ustring,
  data: buffer,
  version: int,
});
export const SetDataResponse = record("SetDataResponse", { stat: Stat });
export const GetACLRequest = record("GetACLRequest", { path: ustring });
export const GetACLResponse = record("GetACLResponse", { acl: vector(ACL), stat: Stat });
export const SetACLRequest = record("SetACLRequest", {
  path: ustring,
  acl: vector(ACL),
  version: int,
});
export const SetACLResponse = record("SetACLResponse", { stat: Stat });
export const GetChildrenRequest = record("GetChildrenRequest", { path: ustring, watch: bool });
export const GetChildrenResponse = record("GetChildrenResponse", { children: vector(ustring) });
export const GetChildren2Request = record("GetChildren2Request", { path: ustring, watch: bool });
export const GetChildren2Response = record("GetChildren2Response", {
  children: vector(ustring),
  stat: Stat,
});
export const SyncRequest = record("SyncRequest", { path: ustring });
export const SyncResponse = record("SyncResponse", { path: ustring });
export const CheckVersionRequest = record("CheckVersionRequest", { path: ustring, version: int });
export const MultiHeader = record("MultiHeader", { type: int, done: bool, err: int });
export const ErrorResponse = record("ErrorResponse", { err: int });
export const AuthPacket = record("AuthPacket", { type: int, scheme: ustring, auth: buffer });
export const SetWatches = record("SetWatches", {
  relativeZxid: long,
  dataWatches: vector(ustring),
  existWatches: vector(ustring),
  childWatches: vector(ustring),
});
export const SetWatches2 = record("SetWatches2", {
  relativeZxid: long,
  dataWatches: vector(ustring),
  existWatches: vector(ustring),
  childWatches: vector(ustring),
  persistentWatches: vector(ustring),
  persistentRecursiveWatches: vector(ustring),
});
export const WatcherEvent = record("WatcherEvent", { type: int, state: int, path: ustring });
export const CheckWatchesRequest = record("CheckWatchesRequest", { path: ustring, type: int });
export const RemoveWatchesRequest = record("RemoveWatchesRequest", { path: ustring, type: int });
export const AddWatchRequest = record("AddWatchRequest", { path: ustring, mode: int });
export const GetEphemeralsRequest = record("GetEphemeralsRequest", { prefixPath: ustring });
export const GetEphemeralsResponse = record("GetEphemeralsResponse", {
  ephemerals: vector(ustring),
});
export const GetAllChildrenNumberRequest = record("GetAllChildrenNumberRequest", {
  path: ustring,
});
export const GetAllChildrenNumberResponse = record("GetAllChildrenNumberResponse", {
  totalNumber: int,
});
export const ClientInfo = record("ClientInfo", { authScheme: ustring, user: ustring });
export const WhoAmIResponse = record("WhoAmIResponse", { clientInfo: vector(ClientInfo) });
export const ReconfigRequest = record("ReconfigRequest", {
  joiningServers: ustring,
  leavingServers: ustring,
  newMembers: ustring,
  curConfigId: long,
});
export const GetSASLRequest = record("GetSASLRequest", { token: buffer });
export const SetSASLResponse = record("SetSASLResponse", { token: buffer });

/** A znode's metadata as clients see it. */
export type Stat = Infer<typeof Stat>;
/** One ACL entry. */
export type ACL = Infer<typeof ACL>;
/** A watch notification body. */
export type WatcherEvent = Infer<typeof WatcherEvent>;
/** The fields of a reply header. */
export type ReplyHeader = Infer<typeof ReplyHeader>;
/** The fields of a request header. */
export type RequestHeader = Infer<typeof RequestHeader>;
/** A decoded create request. */
export type CreateRequestT = Infer<typeof CreateRequest>;
/** One identity. */
export type Id = Infer<typeof Id>;
