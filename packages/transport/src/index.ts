export * from './transport.js';
export * from './collectives.js';
export { createInprocGroup, type InprocGroupOptions } from './inproc-transport.js';
export { createWsTransport, type WsTransportOptions } from './ws-transport.js';
export { createShmTransport, type ShmTransportOptions } from './shm-transport.js';
export { createTransport } from './create-transport.js';
export { startRendezvous, joinRendezvous, type RendezvousServer } from './rendezvous.js';
export { acceptHandshake, dialHandshake, AUTH_FAILED_CLOSE_CODE, type Token } from './ws-handshake.js';
