// The WIT interfaces the SDK is built on (wit/, package netlet:net). componentize-js
// binds these imports; nothing else in the SDK names them.
export * as net from 'netlet:net/net@0.1.0';
export * as dgram from 'netlet:net/dgram@0.1.0';
export * as timers from 'netlet:net/timers@0.1.0';
