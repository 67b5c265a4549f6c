/**
 * Per-connection state, attached once when a client connects: the peer address (read once, not
 * per request) and the exchanges running on it. One 'close' listener per connection replaces a
 * listener per request: when the client goes away, every exchange still running on that
 * connection is told, so its upstream request is aborted at once.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { GatewayError } from '../core/errors.js';

export interface ConnectionUser {
  /** The client closed the connection, or (with `err`) node:http refused the rest of its request. */
  clientGone(err?: GatewayError): void;
}

const kConnection = Symbol('mpgate.connection');

export class ConnectionState {
  readonly peer: string;
  /** The client reached us over TLS (HSTS applies, no redirect to https). */
  readonly secure: boolean;
  #one: ConnectionUser | undefined;
  #more: Set<ConnectionUser> | undefined; // only with pipelined requests

  /** `closing` is the socket, or for HTTP/2 the stream: what ends when the client goes away. */
  constructor(peer: string, secure: boolean, closing: EventEmitter) {
    this.peer = peer;
    this.secure = secure;
    closing.once('close', () => this.#closed());
  }

  static of(socket: Socket): ConnectionState {
    const s = socket as Socket & { [kConnection]?: ConnectionState; encrypted?: boolean };
    return (s[kConnection] ??= new ConnectionState(socket.remoteAddress ?? '', s.encrypted === true, socket));
  }

  /**
   * HTTP/2 multiplexes requests on one connection and a client can reset one stream alone, so
   * each stream gets its own state, closed with the stream.
   */
  static ofStream(stream: EventEmitter & { session?: { socket?: Socket } | undefined }): ConnectionState {
    const socket = stream.session?.socket;
    return new ConnectionState(socket?.remoteAddress ?? '', true, stream);
  }

  attach(user: ConnectionUser): void {
    if (this.#one === undefined) this.#one = user;
    else (this.#more ??= new Set()).add(user);
  }

  detach(user: ConnectionUser): void {
    if (this.#one === user) this.#one = undefined;
    else this.#more?.delete(user);
  }

  /**
   * node:http refused the connection mid-request (bad framing in the body, request timeout): every
   * exchange on it stops now, before more of the request goes upstream. Returns whether one ran.
   */
  refuse(err: GatewayError): boolean {
    const running = this.#one !== undefined || (this.#more?.size ?? 0) > 0;
    this.#closed(err);
    return running;
  }

  #closed(err?: GatewayError): void {
    const one = this.#one;
    this.#one = undefined;
    one?.clientGone(err);
    if (this.#more) for (const u of [...this.#more]) u.clientGone(err);
    this.#more = undefined;
  }
}
