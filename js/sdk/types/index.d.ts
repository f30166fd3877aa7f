// Types for netlet's JavaScript SDK: the Node modules a handler built with `netlet build`
// gets (net, dgram, events, buffer, timers, timers/promises, util, string_decoder,
// process, console) and Node's globals. Reference this file from a TypeScript handler
// (`/// <reference path=".../js/sdk/types/index.d.ts" />`, or "types"/"typeRoots" in
// tsconfig.json) instead of @types/node: it declares what netlet provides, no more.

/* eslint-disable @typescript-eslint/no-explicit-any */

declare module 'events' {
  type Listener = (...args: any[]) => void;

  class EventEmitter {
    constructor(options?: { captureRejections?: boolean });
    static defaultMaxListeners: number;
    static readonly errorMonitor: unique symbol;
    static readonly captureRejectionSymbol: unique symbol;
    static listenerCount(emitter: EventEmitter, eventName: string | symbol): number;
    static once(emitter: EventEmitter, eventName: string | symbol, options?: { signal?: AbortSignal }): Promise<any[]>;
    static on(emitter: EventEmitter, eventName: string | symbol): AsyncIterableIterator<any[]>;
    static getEventListeners(emitter: EventEmitter, eventName: string | symbol): Function[];
    static setMaxListeners(n?: number, ...emitters: EventEmitter[]): void;

    addListener(eventName: string | symbol, listener: Listener): this;
    on(eventName: string | symbol, listener: Listener): this;
    once(eventName: string | symbol, listener: Listener): this;
    prependListener(eventName: string | symbol, listener: Listener): this;
    prependOnceListener(eventName: string | symbol, listener: Listener): this;
    removeListener(eventName: string | symbol, listener: Listener): this;
    off(eventName: string | symbol, listener: Listener): this;
    removeAllListeners(eventName?: string | symbol): this;
    setMaxListeners(n: number): this;
    getMaxListeners(): number;
    listeners(eventName: string | symbol): Function[];
    rawListeners(eventName: string | symbol): Function[];
    emit(eventName: string | symbol, ...args: any[]): boolean;
    listenerCount(eventName: string | symbol, listener?: Function): number;
    eventNames(): Array<string | symbol>;
  }

  // `import { EventEmitter } from 'events'`, as @types/node allows it.
  import internal = require('node:events');
  namespace EventEmitter {
    export { internal as EventEmitter };
  }

  export = EventEmitter;
}

declare module 'node:events' {
  import EventEmitter = require('events');
  export = EventEmitter;
}

declare module 'buffer' {
  type Encoding =
    | 'utf8'
    | 'utf-8'
    | 'hex'
    | 'base64'
    | 'base64url'
    | 'latin1'
    | 'binary'
    | 'ascii'
    | 'ucs2'
    | 'ucs-2'
    | 'utf16le'
    | 'utf-16le';

  interface BufferConstructor {
    /** @deprecated use Buffer.from / Buffer.alloc */
    new (str: string, encoding?: Encoding): Buffer;
    /** @deprecated */
    new (size: number): Buffer;
    /** @deprecated */
    new (array: ArrayLike<number> | ArrayBuffer | Uint8Array): Buffer;
    readonly prototype: Buffer;
    poolSize: number;
    from(str: string, encoding?: Encoding): Buffer<ArrayBuffer>;
    from(data: ArrayLike<number> | Uint8Array | readonly number[]): Buffer<ArrayBuffer>;
    from<T extends ArrayBuffer | SharedArrayBuffer>(arrayBuffer: T, byteOffset?: number, length?: number): Buffer<T>;
    from(obj: { valueOf(): string | object } | { [Symbol.toPrimitive](hint: 'string'): string }, encoding?: Encoding): Buffer;
    of(...items: number[]): Buffer;
    alloc(size: number, fill?: string | number | Uint8Array, encoding?: Encoding): Buffer<ArrayBuffer>;
    allocUnsafe(size: number): Buffer<ArrayBuffer>;
    allocUnsafeSlow(size: number): Buffer<ArrayBuffer>;
    isBuffer(obj: any): obj is Buffer;
    isEncoding(encoding: string): encoding is Encoding;
    byteLength(string: string | ArrayBufferView | ArrayBuffer, encoding?: Encoding): number;
    concat(list: readonly Uint8Array[], totalLength?: number): Buffer<ArrayBuffer>;
    compare(buf1: Uint8Array, buf2: Uint8Array): -1 | 0 | 1;
  }

  // TypeScript 5.7 and later: typed arrays are generic over their buffer.
  interface Buffer<TArrayBuffer extends ArrayBufferLike = ArrayBufferLike> extends Uint8Array<TArrayBuffer> {
    write(string: string, encoding?: Encoding): number;
    write(string: string, offset: number, encoding?: Encoding): number;
    write(string: string, offset: number, length: number, encoding?: Encoding): number;
    toString(encoding?: Encoding, start?: number, end?: number): string;
    toJSON(): { type: 'Buffer'; data: number[] };
    equals(otherBuffer: Uint8Array): boolean;
    compare(target: Uint8Array, targetStart?: number, targetEnd?: number, sourceStart?: number, sourceEnd?: number): -1 | 0 | 1;
    copy(target: Uint8Array, targetStart?: number, sourceStart?: number, sourceEnd?: number): number;
    /** Shares memory with this buffer (as subarray; typed as Uint8Array's copy is). */
    slice(start?: number, end?: number): Buffer<ArrayBuffer>;
    subarray(start?: number, end?: number): Buffer<TArrayBuffer>;
    fill(value: string | Uint8Array | number, offset?: number, end?: number, encoding?: Encoding): this;
    indexOf(value: string | number | Uint8Array, byteOffset?: number, encoding?: Encoding): number;
    lastIndexOf(value: string | number | Uint8Array, byteOffset?: number, encoding?: Encoding): number;
    includes(value: string | number | Uint8Array, byteOffset?: number, encoding?: Encoding): boolean;
    swap16(): this;
    swap32(): this;
    swap64(): this;
    readUInt8(offset?: number): number;
    readUInt16LE(offset?: number): number;
    readUInt16BE(offset?: number): number;
    readUInt32LE(offset?: number): number;
    readUInt32BE(offset?: number): number;
    readUintLE(offset: number, byteLength: number): number;
    readUintBE(offset: number, byteLength: number): number;
    readUIntLE(offset: number, byteLength: number): number;
    readUIntBE(offset: number, byteLength: number): number;
    readInt8(offset?: number): number;
    readInt16LE(offset?: number): number;
    readInt16BE(offset?: number): number;
    readInt32LE(offset?: number): number;
    readInt32BE(offset?: number): number;
    readIntLE(offset: number, byteLength: number): number;
    readIntBE(offset: number, byteLength: number): number;
    readFloatLE(offset?: number): number;
    readFloatBE(offset?: number): number;
    readDoubleLE(offset?: number): number;
    readDoubleBE(offset?: number): number;
    readBigUInt64LE(offset?: number): bigint;
    readBigUInt64BE(offset?: number): bigint;
    readBigInt64LE(offset?: number): bigint;
    readBigInt64BE(offset?: number): bigint;
    writeUInt8(value: number, offset?: number): number;
    writeUInt16LE(value: number, offset?: number): number;
    writeUInt16BE(value: number, offset?: number): number;
    writeUInt32LE(value: number, offset?: number): number;
    writeUInt32BE(value: number, offset?: number): number;
    writeUIntLE(value: number, offset: number, byteLength: number): number;
    writeUIntBE(value: number, offset: number, byteLength: number): number;
    writeInt8(value: number, offset?: number): number;
    writeInt16LE(value: number, offset?: number): number;
    writeInt16BE(value: number, offset?: number): number;
    writeInt32LE(value: number, offset?: number): number;
    writeInt32BE(value: number, offset?: number): number;
    writeIntLE(value: number, offset: number, byteLength: number): number;
    writeIntBE(value: number, offset: number, byteLength: number): number;
    writeFloatLE(value: number, offset?: number): number;
    writeFloatBE(value: number, offset?: number): number;
    writeDoubleLE(value: number, offset?: number): number;
    writeDoubleBE(value: number, offset?: number): number;
    writeBigUInt64LE(value: bigint, offset?: number): number;
    writeBigUInt64BE(value: bigint, offset?: number): number;
    writeBigInt64LE(value: bigint, offset?: number): number;
    writeBigInt64BE(value: bigint, offset?: number): number;
  }

  const Buffer: BufferConstructor;
  const kMaxLength: number;
  const kStringMaxLength: number;
  const constants: { MAX_LENGTH: number; MAX_STRING_LENGTH: number };
  let INSPECT_MAX_BYTES: number;
  function atob(data: string): string;
  function btoa(data: string): string;
  function isUtf8(input: ArrayBufferView | ArrayBuffer): boolean;
  function isAscii(input: ArrayBufferView | ArrayBuffer): boolean;
  /** @deprecated */
  function SlowBuffer(size: number): Buffer;
  export { Buffer, BufferConstructor, Encoding as BufferEncoding, kMaxLength, kStringMaxLength, constants, INSPECT_MAX_BYTES, atob, btoa, isUtf8, isAscii, SlowBuffer };
}

declare module 'node:buffer' {
  export * from 'buffer';
}

declare module 'string_decoder' {
  import { Buffer, BufferEncoding } from 'buffer';
  class StringDecoder {
    constructor(encoding?: BufferEncoding);
    readonly encoding: BufferEncoding;
    write(buffer: Uint8Array | string): string;
    end(buffer?: Uint8Array): string;
  }
  export { StringDecoder };
}

declare module 'node:string_decoder' {
  export * from 'string_decoder';
}

declare module 'timers' {
  class Timeout {
    ref(): this;
    unref(): this;
    hasRef(): boolean;
    refresh(): this;
    close(): this;
    [Symbol.toPrimitive](): number;
  }
  class Immediate {
    ref(): this;
    unref(): this;
    hasRef(): boolean;
  }
  function setTimeout<A extends any[]>(callback: (...args: A) => void, ms?: number, ...args: A): Timeout;
  function clearTimeout(timeout: Timeout | number | string | undefined | null): void;
  function setInterval<A extends any[]>(callback: (...args: A) => void, ms?: number, ...args: A): Timeout;
  function clearInterval(timeout: Timeout | number | string | undefined | null): void;
  function setImmediate<A extends any[]>(callback: (...args: A) => void, ...args: A): Immediate;
  function clearImmediate(immediate: Immediate | undefined | null): void;
  export { Timeout, Immediate, setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate };
}

declare module 'node:timers' {
  export * from 'timers';
}

declare module 'timers/promises' {
  function setTimeout<T = void>(ms?: number, value?: T, options?: { signal?: AbortSignal }): Promise<T>;
  function setImmediate<T = void>(value?: T, options?: { signal?: AbortSignal }): Promise<T>;
  function setInterval<T = void>(ms?: number, value?: T): AsyncIterable<T>;
  const scheduler: { wait(ms: number, options?: { signal?: AbortSignal }): Promise<void>; yield(): Promise<void> };
  export { setTimeout, setImmediate, setInterval, scheduler };
}

declare module 'node:timers/promises' {
  export * from 'timers/promises';
}

declare module 'util' {
  interface InspectOptions {
    depth?: number | null;
    breakLength?: number;
    compact?: number | boolean;
    maxArrayLength?: number;
    customInspect?: boolean;
  }
  function format(format?: any, ...param: any[]): string;
  function formatWithOptions(options: InspectOptions, format?: any, ...param: any[]): string;
  function inspect(object: any, options?: InspectOptions): string;
  namespace inspect {
    const custom: unique symbol;
  }
  function inherits(constructor: unknown, superConstructor: unknown): void;
  function promisify<T extends (...args: any[]) => void>(fn: T): (...args: any[]) => Promise<any>;
  namespace promisify {
    const custom: unique symbol;
  }
  function callbackify(fn: (...args: any[]) => Promise<any>): (...args: any[]) => void;
  function deprecate<T extends Function>(fn: T, message: string, code?: string): T;
  function isDeepStrictEqual(a: unknown, b: unknown): boolean;
  const types: {
    isDate(v: unknown): v is Date;
    isRegExp(v: unknown): v is RegExp;
    isMap(v: unknown): v is Map<unknown, unknown>;
    isSet(v: unknown): v is Set<unknown>;
    isPromise(v: unknown): v is Promise<unknown>;
    isNativeError(v: unknown): v is Error;
    isUint8Array(v: unknown): v is Uint8Array;
    isTypedArray(v: unknown): boolean;
    isArrayBufferView(v: unknown): v is ArrayBufferView;
    isArrayBuffer(v: unknown): v is ArrayBuffer;
  };
  const TextEncoder: typeof globalThis.TextEncoder;
  const TextDecoder: typeof globalThis.TextDecoder;
  export { InspectOptions, format, formatWithOptions, inspect, inherits, promisify, callbackify, deprecate, isDeepStrictEqual, types, TextEncoder, TextDecoder };
}

declare module 'node:util' {
  export * from 'util';
}

declare module 'net' {
  import EventEmitter = require('events');
  import { Buffer, BufferEncoding } from 'buffer';

  interface AddressInfo {
    address: string;
    family: 'IPv4' | 'IPv6';
    port: number;
  }

  interface ServerOpts {
    /** Keep our side open after the peer's end (default false: end it after 'end'). */
    allowHalfOpen?: boolean;
    /** Accepted sockets start paused. */
    pauseOnConnect?: boolean;
    noDelay?: boolean;
    keepAlive?: boolean;
    keepAliveInitialDelay?: number;
  }

  interface ListenOptions {
    /** The port the operator gave (`netlet run --tcp ...`); 0 or omitted: the only one. */
    port?: number;
    host?: string;
    backlog?: number;
    exclusive?: boolean;
  }

  interface SocketConstructorOpts {
    allowHalfOpen?: boolean;
  }

  interface TcpConnectOpts {
    port: number;
    host?: string;
    localAddress?: string;
    family?: 0 | 4 | 6;
    noDelay?: boolean;
    keepAlive?: boolean;
    keepAliveInitialDelay?: number;
    timeout?: number;
    allowHalfOpen?: boolean;
  }

  type ReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

  /** A TCP connection: accepted by a Server, or opened with connect (under --allow). */
  class Socket extends EventEmitter {
    constructor(options?: SocketConstructorOpts);
    readonly bufferSize: number;
    readonly bytesRead: number;
    readonly bytesWritten: number;
    readonly connecting: boolean;
    readonly pending: boolean;
    destroyed: boolean;
    readonly localAddress?: string;
    readonly localPort?: number;
    readonly localFamily?: string;
    readonly remoteAddress?: string;
    readonly remoteFamily?: string;
    readonly remotePort?: number;
    readonly readyState: ReadyState;
    readonly timeout: number;
    allowHalfOpen: boolean;
    readonly readable: boolean;
    readonly readableEnded: boolean;
    readonly readableFlowing: boolean | null;
    readonly readableLength: number;
    readonly readableHighWaterMark: number;
    readonly readableEncoding: BufferEncoding | null;
    readonly writable: boolean;
    readonly writableEnded: boolean;
    readonly writableFinished: boolean;
    readonly writableNeedDrain: boolean;
    readonly writableLength: number;
    readonly writableHighWaterMark: number;
    server: Server | null;

    connect(options: TcpConnectOpts, connectionListener?: () => void): this;
    connect(port: number, host?: string, connectionListener?: () => void): this;
    connect(port: number, connectionListener?: () => void): this;
    /** Queues the bytes; false past the high-water mark (wait for 'drain'). */
    write(data: string | Uint8Array, cb?: (err?: Error | null) => void): boolean;
    write(data: string | Uint8Array, encoding?: BufferEncoding, cb?: (err?: Error | null) => void): boolean;
    end(cb?: () => void): this;
    end(data: string | Uint8Array, cb?: () => void): this;
    end(data: string | Uint8Array, encoding?: BufferEncoding, cb?: () => void): this;
    destroy(error?: Error): this;
    destroySoon(): void;
    resetAndDestroy(): this;
    pause(): this;
    resume(): this;
    isPaused(): boolean;
    read(size?: number): Buffer | string | null;
    unshift(chunk: string | Uint8Array, encoding?: BufferEncoding): void;
    setEncoding(encoding?: BufferEncoding): this;
    setTimeout(timeout: number, callback?: () => void): this;
    setNoDelay(noDelay?: boolean): this;
    setKeepAlive(enable?: boolean, initialDelay?: number): this;
    address(): AddressInfo | {};
    ref(): this;
    unref(): this;
    cork(): void;
    uncork(): void;
    pipe<T extends { write(chunk: any): boolean; end(): any; on(event: string, listener: (...args: any[]) => void): any }>(destination: T, options?: { end?: boolean }): T;
    unpipe(destination?: any): this;
    [Symbol.asyncIterator](): AsyncIterableIterator<Buffer | string>;

    on(event: 'close', listener: (hadError: boolean) => void): this;
    on(event: 'connect' | 'ready' | 'drain' | 'end' | 'finish' | 'timeout' | 'readable' | 'pause' | 'resume', listener: () => void): this;
    on(event: 'data', listener: (data: Buffer | string) => void): this;
    on(event: 'error', listener: (err: Error & { code?: string; errno?: number; syscall?: string }) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
    once(event: 'close', listener: (hadError: boolean) => void): this;
    once(event: 'data', listener: (data: Buffer | string) => void): this;
    once(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  /** A TCP server; listen() takes the listener the operator gave (`netlet run --tcp`). */
  class Server extends EventEmitter {
    constructor(connectionListener?: (socket: Socket) => void);
    constructor(options?: ServerOpts, connectionListener?: (socket: Socket) => void);
    listen(port?: number, hostname?: string, backlog?: number, listeningListener?: () => void): this;
    listen(port?: number, hostname?: string, listeningListener?: () => void): this;
    listen(port?: number, listeningListener?: () => void): this;
    listen(options: ListenOptions, listeningListener?: () => void): this;
    close(callback?: (err?: Error) => void): this;
    address(): AddressInfo | null;
    getConnections(cb: (error: Error | null, count: number) => void): this;
    ref(): this;
    unref(): this;
    maxConnections: number | undefined;
    readonly listening: boolean;

    on(event: 'connection', listener: (socket: Socket) => void): this;
    on(event: 'listening' | 'close', listener: () => void): this;
    on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
    on(event: 'drop', listener: (data: { localAddress?: string; localPort?: number; localFamily?: string; remoteAddress?: string; remotePort?: number; remoteFamily?: string }) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  function createServer(connectionListener?: (socket: Socket) => void): Server;
  function createServer(options?: ServerOpts, connectionListener?: (socket: Socket) => void): Server;
  function connect(options: TcpConnectOpts, connectionListener?: () => void): Socket;
  function connect(port: number, host?: string, connectionListener?: () => void): Socket;
  function createConnection(options: TcpConnectOpts, connectionListener?: () => void): Socket;
  function createConnection(port: number, host?: string, connectionListener?: () => void): Socket;
  function isIP(input: string): 0 | 4 | 6;
  function isIPv4(input: string): boolean;
  function isIPv6(input: string): boolean;
  const Stream: typeof Socket;

  export { AddressInfo, ServerOpts, ListenOptions, TcpConnectOpts, ReadyState, Socket, Server, Stream, createServer, connect, createConnection, isIP, isIPv4, isIPv6 };
}

declare module 'node:net' {
  export * from 'net';
}

declare module 'dgram' {
  import EventEmitter = require('events');
  import { Buffer } from 'buffer';

  interface RemoteInfo {
    address: string;
    family: 'IPv4' | 'IPv6';
    port: number;
    size: number;
  }

  interface BindOptions {
    port?: number;
    address?: string;
    exclusive?: boolean;
  }

  type SocketType = 'udp4' | 'udp6';

  interface SocketOptions {
    type: SocketType;
    reuseAddr?: boolean;
    ipv6Only?: boolean;
    recvBufferSize?: number;
    sendBufferSize?: number;
    signal?: AbortSignal;
  }

  type Message = string | Uint8Array | ArrayBufferView | ReadonlyArray<string | Uint8Array | ArrayBufferView>;

  class Socket extends EventEmitter {
    readonly type: SocketType;
    /** The operator's socket on that port (`netlet run --udp`), or one of its own
     *  (port 0, or a port --allow grants). */
    bind(port?: number, address?: string, callback?: () => void): this;
    bind(port?: number, callback?: () => void): this;
    bind(callback?: () => void): this;
    bind(options: BindOptions, callback?: () => void): this;
    send(msg: Message, port?: number, address?: string, callback?: (error: Error | null, bytes: number) => void): void;
    send(msg: Message, port?: number, callback?: (error: Error | null, bytes: number) => void): void;
    send(msg: Message, callback?: (error: Error | null, bytes: number) => void): void;
    send(msg: string | Uint8Array | ArrayBufferView, offset: number, length: number, port?: number, address?: string, callback?: (error: Error | null, bytes: number) => void): void;
    send(msg: string | Uint8Array | ArrayBufferView, offset: number, length: number, port?: number, callback?: (error: Error | null, bytes: number) => void): void;
    send(msg: string | Uint8Array | ArrayBufferView, offset: number, length: number, callback?: (error: Error | null, bytes: number) => void): void;
    connect(port: number, address?: string, callback?: () => void): void;
    connect(port: number, callback: () => void): void;
    disconnect(): void;
    address(): { address: string; family: 'IPv4' | 'IPv6'; port: number };
    remoteAddress(): { address: string; family: 'IPv4' | 'IPv6'; port: number };
    close(callback?: () => void): this;
    setBroadcast(flag: boolean): void;
    setTTL(ttl: number): number;
    setMulticastTTL(ttl: number): number;
    setMulticastLoopback(flag: boolean): boolean;
    setMulticastInterface(multicastInterface: string): void;
    addMembership(multicastAddress: string, multicastInterface?: string): void;
    dropMembership(multicastAddress: string, multicastInterface?: string): void;
    getRecvBufferSize(): number;
    setRecvBufferSize(size: number): void;
    getSendBufferSize(): number;
    setSendBufferSize(size: number): void;
    getSendQueueSize(): number;
    getSendQueueCount(): number;
    ref(): this;
    unref(): this;

    on(event: 'message', listener: (msg: Buffer, rinfo: RemoteInfo) => void): this;
    on(event: 'listening' | 'close' | 'connect', listener: () => void): this;
    on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  function createSocket(type: SocketType | SocketOptions, callback?: (msg: Buffer, rinfo: RemoteInfo) => void): Socket;
  export { RemoteInfo, BindOptions, SocketType, SocketOptions, Socket, createSocket };
}

declare module 'node:dgram' {
  export * from 'dgram';
}

declare module 'process' {
  const process: NodeJS.Process;
  export = process;
}

declare module 'node:process' {
  import process = require('process');
  export = process;
}

declare module 'console' {
  const console: Console;
  export = console;
}

declare namespace NodeJS {
  interface Process {
    /** ['netlet', 'handler', ...the arguments after `netlet run X.wasm --`]. */
    argv: string[];
    /** Always empty: a handler has no environment. */
    env: Record<string, string | undefined>;
    exitCode: number | undefined;
    readonly platform: string;
    readonly arch: string;
    readonly version: string;
    readonly versions: Record<string, string>;
    nextTick(callback: (...args: any[]) => void, ...args: any[]): void;
    hrtime: { (time?: [number, number]): [number, number]; bigint(): bigint };
    uptime(): number;
    cwd(): string;
    memoryUsage(): { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
    emitWarning(warning: string | Error, type?: string, code?: string): void;
    /** Stops the instance (netlet starts a new one). */
    exit(code?: number): never;
    stdout: { write(chunk: string | Uint8Array, cb?: () => void): boolean };
    stderr: { write(chunk: string | Uint8Array, cb?: () => void): boolean };
    on(event: 'uncaughtException', listener: (err: Error, origin: string) => void): this;
    on(event: 'warning', listener: (warning: Error) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
    once(event: string | symbol, listener: (...args: any[]) => void): this;
    emit(event: string | symbol, ...args: any[]): boolean;
    removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
  }
}

// Web globals the engine provides and the modules above name, declared for a tsconfig
// without the DOM library ("lib": ["es2022"], as Node projects set it). With the DOM
// library these merge with its declarations: the members are declared as it declares
// them, and each `var` takes the DOM's type when there is one (as @types/node does).
interface Console {
  assert(condition?: boolean, ...data: any[]): void;
  count(label?: string): void;
  countReset(label?: string): void;
  debug(...data: any[]): void;
  dir(item?: any, options?: any): void;
  error(...data: any[]): void;
  group(...data: any[]): void;
  groupEnd(): void;
  info(...data: any[]): void;
  log(...data: any[]): void;
  table(tabularData?: any, properties?: string[]): void;
  time(label?: string): void;
  timeEnd(label?: string): void;
  timeLog(label?: string, ...data: any[]): void;
  trace(...data: any[]): void;
  warn(...data: any[]): void;
}
declare var console: Console;
interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: any;
  throwIfAborted(): void;
}
interface AbortController {
  readonly signal: AbortSignal;
  abort(reason?: any): void;
}
declare var AbortController: typeof globalThis extends { onmessage: any; AbortController: infer T }
  ? T
  : { prototype: AbortController; new (): AbortController };
declare var AbortSignal: typeof globalThis extends { onmessage: any; AbortSignal: infer T }
  ? T
  : { prototype: AbortSignal; abort(reason?: any): AbortSignal; timeout(milliseconds: number): AbortSignal };
interface TextEncoder {
  readonly encoding: string;
  encode(input?: string): Uint8Array;
}
interface TextDecoder {
  readonly encoding: string;
  readonly fatal: boolean;
  readonly ignoreBOM: boolean;
  decode(input?: ArrayBuffer | ArrayBufferView, options?: { stream?: boolean }): string;
}
declare var TextEncoder: typeof globalThis extends { onmessage: any; TextEncoder: infer T }
  ? T
  : { prototype: TextEncoder; new (): TextEncoder };
declare var TextDecoder: typeof globalThis extends { onmessage: any; TextDecoder: infer T }
  ? T
  : {
      prototype: TextDecoder;
      new (label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean }): TextDecoder;
    };
declare function queueMicrotask(callback: () => void): void;

declare var process: NodeJS.Process;
declare var global: typeof globalThis;
declare var Buffer: import('buffer').BufferConstructor;
type Buffer<T extends ArrayBufferLike = ArrayBufferLike> = import('buffer').Buffer<T>;
declare function setTimeout<A extends any[]>(callback: (...args: A) => void, ms?: number, ...args: A): import('timers').Timeout;
declare function clearTimeout(timeout: import('timers').Timeout | number | string | undefined | null): void;
declare function setInterval<A extends any[]>(callback: (...args: A) => void, ms?: number, ...args: A): import('timers').Timeout;
declare function clearInterval(timeout: import('timers').Timeout | number | string | undefined | null): void;
declare function setImmediate<A extends any[]>(callback: (...args: A) => void, ...args: A): import('timers').Immediate;
declare function clearImmediate(immediate: import('timers').Immediate | undefined | null): void;
declare var require: (id: string) => any;
declare var module: { exports: any; id: string };
declare var exports: any;
declare var __dirname: string;
declare var __filename: string;

declare module 'http' {
  import EventEmitter = require('events');
  import { Buffer, BufferEncoding } from 'buffer';
  import * as net from 'net';

  type OutgoingHeaders = Record<string, string | number | string[]> | Array<[string, string | number]> | Array<string | number>;

  class IncomingMessage extends EventEmitter {
    socket: net.Socket;
    readonly connection: net.Socket;
    method: string;
    url: string;
    httpVersion: string;
    httpVersionMajor: number;
    httpVersionMinor: number;
    /** Lower-case names; repeats joined with ', ' (set-cookie: an array). */
    headers: Record<string, string | string[] | undefined>;
    rawHeaders: string[];
    trailers: Record<string, string>;
    rawTrailers: string[];
    complete: boolean;
    aborted: boolean;
    upgrade: boolean;
    readableEnded: boolean;
    destroyed: boolean;
    setEncoding(encoding: BufferEncoding): this;
    pause(): this;
    resume(): this;
    isPaused(): boolean;
    setTimeout(ms: number, cb?: () => void): this;
    destroy(err?: Error): this;
    [Symbol.asyncIterator](): AsyncIterableIterator<Buffer | string>;
  }

  class ServerResponse extends EventEmitter {
    req: IncomingMessage;
    socket: net.Socket | null;
    statusCode: number;
    statusMessage: string | undefined;
    sendDate: boolean;
    readonly headersSent: boolean;
    readonly writableEnded: boolean;
    readonly writableFinished: boolean;
    setHeader(name: string, value: string | number | readonly string[]): this;
    appendHeader(name: string, value: string | readonly string[]): this;
    getHeader(name: string): string | number | string[] | undefined;
    getHeaders(): Record<string, string | number | string[]>;
    getHeaderNames(): string[];
    hasHeader(name: string): boolean;
    removeHeader(name: string): void;
    writeHead(statusCode: number, statusMessage?: string, headers?: OutgoingHeaders): this;
    writeHead(statusCode: number, headers?: OutgoingHeaders): this;
    flushHeaders(): void;
    write(chunk: string | Uint8Array, cb?: (err?: Error | null) => void): boolean;
    write(chunk: string | Uint8Array, encoding: BufferEncoding, cb?: (err?: Error | null) => void): boolean;
    end(cb?: () => void): this;
    end(chunk: string | Uint8Array, cb?: () => void): this;
    end(chunk: string | Uint8Array, encoding: BufferEncoding, cb?: () => void): this;
    writeContinue(cb?: () => void): void;
    setTimeout(ms: number, cb?: () => void): this;
    destroy(err?: Error): this;
  }

  type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

  interface ServerOptions {
    keepAliveTimeout?: number;
    requireHostHeader?: boolean;
    noDelay?: boolean;
    keepAlive?: boolean;
  }

  class Server extends net.Server {
    constructor(requestListener?: RequestListener);
    constructor(options: ServerOptions, requestListener?: RequestListener);
    keepAliveTimeout: number;
    headersTimeout: number;
    requestTimeout: number;
    timeout: number;
    setTimeout(ms: number, cb?: () => void): this;
    closeIdleConnections(): void;
    closeAllConnections(): void;
  }

  function createServer(requestListener?: RequestListener): Server;
  function createServer(options: ServerOptions, requestListener?: RequestListener): Server;
  const STATUS_CODES: Record<number, string>;
  const METHODS: string[];
  const maxHeaderSize: number;
  function validateHeaderName(name: string): void;
  function validateHeaderValue(name: string, value: unknown): void;

  export { IncomingMessage, ServerResponse, Server, ServerOptions, RequestListener, createServer, STATUS_CODES, METHODS, maxHeaderSize, validateHeaderName, validateHeaderValue };
}

declare module 'node:http' {
  export * from 'http';
}

/** The npm `ws` package's server side (its version 8 API). */
declare module 'ws' {
  import EventEmitter = require('events');
  import { Buffer } from 'buffer';
  import * as http from 'http';
  import * as net from 'net';

  type Data = string | Buffer | ArrayBuffer | ArrayBufferView | number;

  class WebSocket extends EventEmitter {
    static readonly CONNECTING: 0;
    static readonly OPEN: 1;
    static readonly CLOSING: 2;
    static readonly CLOSED: 3;
    readonly CONNECTING: 0;
    readonly OPEN: 1;
    readonly CLOSING: 2;
    readonly CLOSED: 3;
    readonly readyState: 0 | 1 | 2 | 3;
    readonly protocol: string;
    readonly extensions: string;
    readonly bufferedAmount: number;
    readonly isPaused: boolean;
    binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments';
    send(data: Data, cb?: (err?: Error) => void): void;
    send(data: Data, options: { binary?: boolean; fin?: boolean; mask?: boolean; compress?: boolean }, cb?: (err?: Error) => void): void;
    ping(data?: Data, mask?: boolean, cb?: (err?: Error) => void): void;
    pong(data?: Data, mask?: boolean, cb?: (err?: Error) => void): void;
    close(code?: number, reason?: string | Buffer): void;
    terminate(): void;
    pause(): void;
    resume(): void;
    on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): this;
    on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
    on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
    onmessage: ((event: { data: string | Buffer; type: string; target: WebSocket }) => void) | null;
    onclose: ((event: { code: number; reason: string; wasClean: boolean; type: string; target: WebSocket }) => void) | null;
    onerror: ((event: { error: Error; message: string; type: string; target: WebSocket }) => void) | null;
    onopen: ((event: { type: string; target: WebSocket }) => void) | null;
    addEventListener(type: 'message' | 'close' | 'error' | 'open', listener: (event: any) => void): void;
    removeEventListener(type: 'message' | 'close' | 'error' | 'open', listener: (event: any) => void): void;
  }

  interface ServerOptions {
    server?: http.Server;
    noServer?: boolean;
    port?: number;
    host?: string;
    path?: string;
    maxPayload?: number;
    clientTracking?: boolean;
    autoPong?: boolean;
    skipUTF8Validation?: boolean;
    perMessageDeflate?: false;
    handleProtocols?: (protocols: Set<string>, req: http.IncomingMessage) => string | false;
    verifyClient?:
      | ((info: { origin: string | undefined; secure: boolean; req: http.IncomingMessage }) => boolean)
      | ((
          info: { origin: string | undefined; secure: boolean; req: http.IncomingMessage },
          cb: (verified: boolean, code?: number, message?: string, headers?: Record<string, string>) => void,
        ) => void);
  }

  class WebSocketServer extends EventEmitter {
    constructor(options: ServerOptions, callback?: () => void);
    options: ServerOptions;
    clients: Set<WebSocket>;
    address(): net.AddressInfo | null;
    shouldHandle(req: http.IncomingMessage): boolean;
    handleUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, cb: (ws: WebSocket, req: http.IncomingMessage) => void): void;
    close(cb?: (err?: Error) => void): void;
    on(event: 'connection', listener: (ws: WebSocket, req: http.IncomingMessage) => void): this;
    on(event: 'headers', listener: (headers: string[], req: http.IncomingMessage) => void): this;
    on(event: 'wsClientError', listener: (err: Error, socket: net.Socket, req: http.IncomingMessage) => void): this;
    on(event: 'close' | 'listening', listener: () => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  namespace WebSocket {
    export { WebSocketServer, WebSocketServer as Server, ServerOptions, Data };
    export { WebSocket };
  }

  export = WebSocket;
}
