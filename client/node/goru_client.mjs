// A small client for goru-daemon: Node 20, built-in modules only.
//
// The daemon speaks JSON-RPC 2.0 framed as LSP frames it
// (`Content-Length: N\r\n\r\n` then N bytes of JSON), over a Unix socket or
// over its stdio. Besides answering our requests, it sends us `host/call`
// requests (guest code calling a host function this client serves; several
// may be outstanding at once) and `run/output` notifications (output of a
// streaming run). Every incoming frame is dispatched as it arrives: host
// functions run as promises, so a slow one never holds up the others.
//
//   import { Client } from "./goru_client.mjs";
//   const client = await Client.connect("/tmp/goru.sock", {
//     hostFunctions: { add: ({ a, b }) => a + b },
//   });
//   const session = await client.createSession("javascript");
//   const result = await client.run(session, 'console.log(call("add", {a: 2, b: 3}))');
//   console.log(result.stdout); // 5
//   await client.close();

import { spawn as spawnProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";

export const PROTOCOL_VERSION = 1;

/** The daemon's JSON-RPC error codes (protocol/src/codes.rs). */
export const codes = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  UNKNOWN_SESSION: -32001,
  NOT_INITIALIZED: -32002,
  SESSION_BUSY: -32003,
  LIMIT_EXCEEDED: -32004,
  CLIENT_ID_IN_USE: -32005,
  UNSUPPORTED_PROTOCOL_VERSION: -32006,
  ALREADY_INITIALIZED: -32007,
  SANDBOX_START_FAILED: -32008,
  REQUEST_CANCELLED: -32800,
  // What this client answers a host call that failed with.
  HOST_FUNCTION_FAILED: -32000,
  // Not a daemon code: the connection ended before the answer came.
  CONNECTION_CLOSED: -32099,
});

/** A JSON-RPC error from the daemon, or a connection that ended. */
export class GoruError extends Error {
  constructor(code, message, data) {
    super(message);
    this.name = "GoruError";
    this.code = code;
    this.data = data;
  }
}

const HEADER_END = Buffer.from("\r\n\r\n");

export class Client {
  /** Use `Client.connect` or `Client.spawn` rather than this. */
  constructor(input, output, options = {}, child = null) {
    this.clientId = options.clientId ?? randomBytes(16).toString("hex");
    this.server = null;
    this._input = input;
    this._output = output;
    this._child = child;
    this._hostFunctions = { ...(options.hostFunctions ?? {}) };
    this._onOutput = options.onOutput ?? null;
    this._nextId = 0;
    this._pending = new Map(); // id -> { resolve, reject, onOutput }
    this._buffer = Buffer.alloc(0);
    this._closed = null; // the GoruError calls get once the connection ends
    input.on("data", (chunk) => this._receive(chunk));
    input.on("error", (err) => this._shut(`the connection failed: ${err.message}`));
    input.on("close", () => this._shut("the daemon closed the connection"));
    output.on("error", (err) => this._shut(`the connection failed: ${err.message}`));
  }

  /**
   * Connects to a daemon listening on a Unix socket (`goru-daemon --socket PATH`)
   * and initializes the connection. Options: `clientId` (random by default;
   * sessions belong to it, and a client reconnecting with it finds them
   * again), `hostFunctions` ({name: (args) => value or promise}),
   * `onOutput(params)` for streamed output of every run, `clientInfo`.
   */
  static async connect(socketPath, options = {}) {
    const socket = await new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(socket);
      });
      socket.once("error", reject);
    });
    const client = new Client(socket, socket, options);
    await client._initialize(options);
    return client;
  }

  /**
   * Starts a daemon as a child speaking on its stdio (e.g.
   * `["goru-daemon", "--stdio"]`) and connects to it; its stderr (logs) goes
   * to ours. `close()` waits for it to exit.
   */
  static async spawn(argv, options = {}) {
    const child = spawnProcess(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
    const client = new Client(child.stdout, child.stdin, options, child);
    child.once("error", (err) => client._shut(`cannot start ${argv[0]}: ${err.message}`));
    await client._initialize(options);
    return client;
  }

  async _initialize(options) {
    try {
      this.server = await this.request("initialize", {
        clientId: this.clientId,
        protocolVersion: PROTOCOL_VERSION,
        hostFunctions: Object.keys(this._hostFunctions).sort(),
        clientInfo: options.clientInfo ?? { name: "goru_client.mjs" },
      });
    } catch (err) {
      this._shut("initialize failed");
      this._destroy();
      throw err;
    }
  }

  // -- the methods ----------------------------------------------------------

  /** Creates a session ("python" or "javascript"); resolves to its id. */
  async createSession(language, { capabilities, limits, argv } = {}) {
    const params = { language };
    if (capabilities !== undefined) params.capabilities = capabilities;
    if (limits !== undefined) params.limits = limits;
    if (argv !== undefined) params.argv = argv;
    return (await this.request("session/create", params)).sessionId;
  }

  /**
   * Runs code in a session; resolves to the RunResult (`outcome`, `stdout`,
   * `stderr`, `value`, `exception`, `exitCode`, ...). With `stream: true`
   * output comes as it is written to `onOutput(params)` (`params.stream` is
   * "stdout" or "stderr", `params.data` the text), and the result's stdout
   * and stderr are empty.
   */
  run(sessionId, code, { mode = "exec", stream = false, onOutput, filename } = {}) {
    const params = { sessionId, code, mode, stream };
    if (filename !== undefined) params.filename = filename;
    return this.request("session/run", params, { onOutput });
  }

  async closeSession(sessionId) {
    await this.request("session/close", { sessionId });
  }

  /** This client's live sessions: {sessionId, language, busy, runs, idleMs}. */
  async listSessions() {
    return (await this.request("session/list")).sessions;
  }

  /** Runs code in a fresh sandbox thrown away afterwards; resolves to the RunResult. */
  runOnce(language, code, { capabilities, limits, stream = false, onOutput, filename, argv } = {}) {
    const params = { language, code, stream };
    if (capabilities !== undefined) params.capabilities = capabilities;
    if (limits !== undefined) params.limits = limits;
    if (filename !== undefined) params.filename = filename;
    if (argv !== undefined) params.argv = argv;
    return this.request("run", params, { onOutput });
  }

  /**
   * Says goodbye (`shutdown`, then the `exit` notification) and closes the
   * connection; the daemon then closes this client's sessions. (A connection
   * that just drops leaves them alive for the daemon's reconnect grace
   * period, for a client reconnecting with the same id.)
   */
  async close() {
    if (this._closed === null) {
      try {
        await this.request("shutdown");
        this.notify("exit");
      } catch {
        // Already gone.
      }
    }
    this._shut("the client is closed");
    const child = this._child;
    const exited =
      child && child.exitCode === null && child.signalCode === null
        ? new Promise((resolve) => child.once("exit", resolve))
        : null;
    if (child) {
      child.stdin.end(); // the daemon ends at the end of its stdin
    } else {
      await new Promise((resolve) => this._output.end(resolve));
      this._output.destroy();
    }
    if (exited) {
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }

  // -- JSON-RPC ---------------------------------------------------------------

  /** Sends any request; resolves to its result, rejects with a GoruError. */
  request(method, params, { onOutput } = {}) {
    if (this._closed) {
      return Promise.reject(new GoruError(this._closed.code, this._closed.message));
    }
    const id = ++this._nextId;
    const message = { jsonrpc: "2.0", id, method };
    if (params !== undefined) message.params = params;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, onOutput });
      try {
        this._send(message);
      } catch (err) {
        this._pending.delete(id);
        reject(err);
      }
    });
  }

  notify(method, params) {
    const message = { jsonrpc: "2.0", method };
    if (params !== undefined) message.params = params;
    this._send(message);
  }

  _send(message) {
    const body = Buffer.from(JSON.stringify(message), "utf8");
    this._output.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]));
  }

  _receive(chunk) {
    this._buffer = this._buffer.length ? Buffer.concat([this._buffer, chunk]) : chunk;
    for (;;) {
      const end = this._buffer.indexOf(HEADER_END);
      if (end < 0) {
        if (this._buffer.length > 16 * 1024) this._fail("a frame header is too long");
        return;
      }
      let length = null;
      for (const line of this._buffer.subarray(0, end).toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon < 0) {
          if (line.trim() === "") continue;
          return this._fail(`bad frame header \`${line.slice(0, 64)}\``);
        }
        if (line.slice(0, colon).trim().toLowerCase() === "content-length") {
          length = Number.parseInt(line.slice(colon + 1).trim(), 10);
        }
      }
      if (length === null || !Number.isSafeInteger(length) || length < 0) {
        return this._fail("a frame without a valid Content-Length");
      }
      const start = end + HEADER_END.length;
      if (this._buffer.length < start + length) return;
      const body = this._buffer.subarray(start, start + length).toString("utf8");
      this._buffer = this._buffer.subarray(start + length);
      let message;
      try {
        message = JSON.parse(body);
      } catch {
        return this._fail("a frame that is not JSON");
      }
      this._dispatch(message);
    }
  }

  _dispatch(message) {
    if (message === null || typeof message !== "object") return;
    const { method } = message;
    if (method === undefined) {
      // A response to one of our requests.
      const pending = this._pending.get(message.id);
      if (!pending) return;
      this._pending.delete(message.id);
      if (message.error) {
        const { code = 0, message: text = "", data } = message.error;
        pending.reject(new GoruError(code, text, data));
      } else {
        pending.resolve(message.result);
      }
    } else if (message.id !== undefined) {
      // A request from the daemon.
      if (method === "host/call") {
        this._serveHostCall(message.id, message.params ?? {});
      } else {
        this._reply(message.id, null, {
          code: codes.METHOD_NOT_FOUND,
          message: `this client has no method \`${method}\``,
        });
      }
    } else if (method === "run/output") {
      const params = message.params ?? {};
      const callback = this._pending.get(params.requestId)?.onOutput ?? this._onOutput;
      if (callback) {
        try {
          callback(params);
        } catch {
          // A faulty callback must not stop the reader.
        }
      }
    }
  }

  async _serveHostCall(id, { name, args }) {
    const fn = Object.hasOwn(this._hostFunctions, name) ? this._hostFunctions[name] : undefined;
    if (typeof fn !== "function") {
      this._reply(id, null, { code: codes.METHOD_NOT_FOUND, message: `no host function named \`${name}\`` });
      return;
    }
    let result;
    try {
      result = await fn(args);
    } catch (err) {
      const text = err instanceof Error ? err.message || err.name : String(err);
      this._reply(id, null, { code: codes.HOST_FUNCTION_FAILED, message: text });
      return;
    }
    this._reply(id, result === undefined ? null : result);
  }

  _reply(id, result, error) {
    if (this._closed) return; // nobody to answer
    const message = error ? { jsonrpc: "2.0", id, error } : { jsonrpc: "2.0", id, result };
    try {
      this._send(message);
    } catch (err) {
      // JSON.stringify refuses BigInt and cycles.
      this._send({
        jsonrpc: "2.0",
        id,
        error: { code: codes.HOST_FUNCTION_FAILED, message: `the host function's result is not JSON: ${err.message}` },
      });
    }
  }

  _fail(why) {
    this._shut(why);
    this._destroy();
  }

  _destroy() {
    this._input.destroy();
    this._output.destroy();
    if (this._child && this._child.exitCode === null) this._child.kill();
  }

  _shut(why) {
    if (this._closed === null) {
      this._closed = new GoruError(codes.CONNECTION_CLOSED, why);
    }
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const { reject } of pending) {
      reject(new GoruError(this._closed.code, this._closed.message));
    }
  }
}
