// The public surface of the qcop package: everything a program imports from 'qcop'.
export { connect, type ConnectOptions } from './client/connect.js';
export { Client, type ClientOptions, type SendOptions } from './client/client.js';
export { Listener, Watch, type WatchEvent } from './client/handles.js';
export { ReceivedMessage } from './client/message.js';
export type { MonitorEvent, MonitorClient } from './client/monitor.js';
export { QCopChannel } from './client/qcopchannel.js';
export { expose, proxy, introspect, ExposedObject, INTROSPECT, type ExposeOptions, type ProxyOptions, type Proxied, type ProxyMethods, type ProxyControls, type SignalMap, type SignalName, type SignalSubscription, type Signatures, type InterfaceDescription, type MemberDescription, type MethodKeys, type ReservedName } from './client/typed.js';
export { startBroker, type Broker } from './broker/broker.js';
export type { Carrier } from './broker/facade.js';
export type { PeerIdentity } from './broker/peer.js';
export { identityOfUser } from './broker/acl/accounts.js';
export type { BrokerOptions, SlowConsumerPolicy } from './broker/options.js';
export { defaultSocketPath } from './broker/socket-path.js';
export { QcopError, CODES, type QcopCode, type ReplierCode } from './protocol/errors.js';
export { PROTOCOL_VERSION } from './protocol/constants.js';
export { SharedMemory, SystemSemaphore, listSegments, collectGarbage, nativeAvailable } from './shm/index.js';
export type { SegmentInfo, GcResult, LockOptions, LockResult, SegmentCreateOptions, AttachOptions, SemaphoreOpenOptions, AcquireOptions } from './shm/index.js';
