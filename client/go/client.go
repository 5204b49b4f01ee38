// Package goru is a small client for goru-daemon, standard library only.
//
// The daemon speaks JSON-RPC 2.0 framed as LSP frames it
// ("Content-Length: N\r\n\r\n" then N bytes of JSON), over a Unix socket or
// over its stdio. Besides answering our requests, it sends us "host/call"
// requests (guest code calling a host function this client serves; several
// may be outstanding at once) and "run/output" notifications (output of a
// streaming run). One goroutine reads every incoming frame: responses
// complete the waiting call, each host call runs in its own goroutine, and
// output goes to the run's callback.
//
//	client, err := goru.Connect("/tmp/goru.sock", goru.Options{
//		HostFunctions: map[string]func(json.RawMessage) (any, error){
//			"add": func(raw json.RawMessage) (any, error) {
//				var args struct{ A, B float64 }
//				err := json.Unmarshal(raw, &args)
//				return args.A + args.B, err
//			},
//		},
//	})
//	session, err := client.CreateSession("python", nil)
//	result, err := client.Run(session, `print(call("add", a=2, b=3))`, nil)
//	fmt.Print(result.Stdout) // 5
//	client.Close()
package goru

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProtocolVersion is the protocol version this client speaks.
const ProtocolVersion = 1

// The daemon's JSON-RPC error codes (protocol/src/codes.rs).
const (
	CodeParseError                 = -32700
	CodeInvalidRequest             = -32600
	CodeMethodNotFound             = -32601
	CodeInvalidParams              = -32602
	CodeInternalError              = -32603
	CodeUnknownSession             = -32001
	CodeNotInitialized             = -32002
	CodeSessionBusy                = -32003
	CodeLimitExceeded              = -32004
	CodeClientIDInUse              = -32005
	CodeUnsupportedProtocolVersion = -32006
	CodeAlreadyInitialized         = -32007
	CodeSandboxStartFailed         = -32008
	CodeRequestCancelled           = -32800
	// CodeHostFunctionFailed is what this client answers a host call whose
	// function returned an error (unless it returned an *RPCError).
	CodeHostFunctionFailed = -32000
)

// RPCError is a JSON-RPC error from the daemon. A host function may also
// return one to answer with its own code.
type RPCError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
}

// ErrClosed is returned (wrapped, with the reason) by calls made on, or
// waiting on, a connection that has ended.
var ErrClosed = errors.New("goru: the connection is closed")

// HostFunction serves one host function: it gets the arguments as the guest
// passed them (a JSON object for Python keyword arguments) and returns any
// value encoding/json can marshal, or an error the guest sees raised.
type HostFunction = func(args json.RawMessage) (any, error)

// Options for Connect and Spawn.
type Options struct {
	// ClientID is who the client is: sessions belong to it, and a client
	// reconnecting with it finds them again. Random when empty.
	ClientID string
	// HostFunctions are the functions guest code can call.
	HostFunctions map[string]func(json.RawMessage) (any, error)
	// OnOutput gets streamed output of runs that have no callback of their own.
	OnOutput func(Output)
	// ClientInfo is for the daemon's logs.
	ClientInfo *ClientInfo
}

// ClientInfo names the client in the daemon's logs.
type ClientInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Output is one "run/output" notification of a streaming run.
type Output struct {
	SessionID *string         `json:"sessionId"` // nil for a one-shot run
	RequestID json.RawMessage `json:"requestId"`
	Stream    string          `json:"stream"` // "stdout" or "stderr"
	Data      string          `json:"data"`
}

// InitializeResult is what the daemon answers "initialize" with.
type InitializeResult struct {
	ProtocolVersion int             `json:"protocolVersion"`
	ServerInfo      ClientInfo      `json:"serverInfo"`
	Languages       []string        `json:"languages"`
	Limits          json.RawMessage `json:"limits"`
	Sessions        []SessionInfo   `json:"sessions"`
}

// SessionInfo describes one live session.
type SessionInfo struct {
	SessionID string `json:"sessionId"`
	Language  string `json:"language"`
	Busy      bool   `json:"busy"`
	Runs      uint64 `json:"runs"`
	IdleMs    uint64 `json:"idleMs"`
}

// Limits of a session or a one-shot run; zero leaves a limit at the daemon's value.
type Limits struct {
	TimeoutMs           uint64 `json:"timeoutMs,omitempty"`
	MemoryBytes         uint64 `json:"memoryBytes,omitempty"`
	MaxOutputBytes      uint64 `json:"maxOutputBytes,omitempty"`
	MaxHostCalls        uint64 `json:"maxHostCalls,omitempty"`
	MaxHostPayloadBytes uint64 `json:"maxHostPayloadBytes,omitempty"`
}

// SessionOptions for CreateSession.
type SessionOptions struct {
	// Capabilities such as {"kv": {}} (see docs/sandbox-api.md); none when nil.
	Capabilities map[string]any
	Limits       *Limits
	Argv         []string
}

// RunOptions for Run.
type RunOptions struct {
	Mode     string // "exec" (the default), "repl" or "checkComplete"
	Stream   bool   // send output to OnOutput as it is written
	OnOutput func(Output)
	Filename string
}

// RunOnceOptions for RunOnce.
type RunOnceOptions struct {
	Capabilities map[string]any
	Limits       *Limits
	Stream       bool
	OnOutput     func(Output)
	Filename     string
	Argv         []string
}

// RunResult is the result of Run and RunOnce.
type RunResult struct {
	// "ok", "incomplete", "exception", "exit", "timeout", "memoryLimit",
	// "outputLimit", "crashed" or "cancelled".
	Outcome      string     `json:"outcome"`
	Stdout       string     `json:"stdout"`
	Stderr       string     `json:"stderr"`
	Value        *string    `json:"value,omitempty"`
	Exception    *Exception `json:"exception,omitempty"`
	ExitCode     int        `json:"exitCode"`
	Message      string     `json:"message,omitempty"`
	DurationMs   float64    `json:"durationMs"`
	SessionAlive *bool      `json:"sessionAlive,omitempty"`
}

// Exception is an exception that escaped the guest's code.
type Exception struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

type response struct {
	result json.RawMessage
	err    error
}

type pending struct {
	done     chan response
	onOutput func(Output)
}

// Client is one connection to goru-daemon. Its methods may be called from
// several goroutines at once.
type Client struct {
	ClientID string
	// Server is the "initialize" result.
	Server InitializeResult

	reader    *bufio.Reader
	writer    io.Writer
	closer    func() error
	cmd       *exec.Cmd
	functions map[string]func(json.RawMessage) (any, error)
	onOutput  func(Output)

	writeMu    sync.Mutex
	mu         sync.Mutex
	nextID     int64
	pending    map[int64]*pending
	closed     error
	readerDone chan struct{}
}

// Connect connects to a daemon listening on a Unix socket
// ("goru-daemon --socket PATH") and initializes the connection.
func Connect(path string, opts Options) (*Client, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return start(conn, conn, conn.Close, nil, opts)
}

// Spawn starts a daemon as a child speaking on its stdio (for example
// []string{"goru-daemon", "--stdio"}) and connects to it; its stderr (logs)
// goes to ours. Close waits for it to exit.
func Spawn(argv []string, opts Options) (*Client, error) {
	if len(argv) == 0 {
		return nil, errors.New("goru: Spawn needs a command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The daemon ends at the end of its stdin; the reader then sees the end of its stdout.
	return start(stdout, stdin, stdin.Close, cmd, opts)
}

func start(r io.Reader, w io.Writer, closer func() error, cmd *exec.Cmd, opts Options) (*Client, error) {
	id := opts.ClientID
	if id == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id = hex.EncodeToString(b[:])
	}
	c := &Client{
		ClientID:   id,
		reader:     bufio.NewReader(r),
		writer:     w,
		closer:     closer,
		cmd:        cmd,
		functions:  make(map[string]func(json.RawMessage) (any, error)),
		onOutput:   opts.OnOutput,
		pending:    make(map[int64]*pending),
		readerDone: make(chan struct{}),
	}
	names := make([]string, 0, len(opts.HostFunctions))
	for name, fn := range opts.HostFunctions {
		c.functions[name] = fn
		names = append(names, name)
	}
	sort.Strings(names)
	go c.readLoop()
	info := opts.ClientInfo
	if info == nil {
		info = &ClientInfo{Name: "goru Go client"}
	}
	params := map[string]any{
		"clientId":        id,
		"protocolVersion": ProtocolVersion,
		"hostFunctions":   names,
		"clientInfo":      info,
	}
	if err := c.Call(context.Background(), "initialize", params, &c.Server, nil); err != nil {
		c.shut(errors.New("initialize failed"))
		c.finish()
		return nil, err
	}
	return c, nil
}

// CreateSession creates a session ("python" or "javascript") and returns its id.
func (c *Client) CreateSession(language string, opts *SessionOptions) (string, error) {
	params := map[string]any{"language": language}
	if opts != nil {
		if opts.Capabilities != nil {
			params["capabilities"] = opts.Capabilities
		}
		if opts.Limits != nil {
			params["limits"] = opts.Limits
		}
		if opts.Argv != nil {
			params["argv"] = opts.Argv
		}
	}
	var result struct {
		SessionID string `json:"sessionId"`
	}
	err := c.Call(context.Background(), "session/create", params, &result, nil)
	return result.SessionID, err
}

// Run runs code in a session. With opts.Stream the output goes to
// opts.OnOutput (or Options.OnOutput) as it is written, and the result's
// Stdout and Stderr are empty.
func (c *Client) Run(sessionID, code string, opts *RunOptions) (*RunResult, error) {
	return c.RunContext(context.Background(), sessionID, code, opts)
}

// RunContext is Run, cancelled (with "$/cancelRequest") when ctx is done.
func (c *Client) RunContext(ctx context.Context, sessionID, code string, opts *RunOptions) (*RunResult, error) {
	if opts == nil {
		opts = &RunOptions{}
	}
	mode := opts.Mode
	if mode == "" {
		mode = "exec"
	}
	params := map[string]any{"sessionId": sessionID, "code": code, "mode": mode, "stream": opts.Stream}
	if opts.Filename != "" {
		params["filename"] = opts.Filename
	}
	var result RunResult
	if err := c.Call(ctx, "session/run", params, &result, opts.OnOutput); err != nil {
		return nil, err
	}
	return &result, nil
}

// CloseSession closes a session.
func (c *Client) CloseSession(sessionID string) error {
	return c.Call(context.Background(), "session/close", map[string]any{"sessionId": sessionID}, nil, nil)
}

// ListSessions lists this client's live sessions.
func (c *Client) ListSessions() ([]SessionInfo, error) {
	var result struct {
		Sessions []SessionInfo `json:"sessions"`
	}
	err := c.Call(context.Background(), "session/list", nil, &result, nil)
	return result.Sessions, err
}

// RunOnce runs code in a fresh sandbox thrown away afterwards.
func (c *Client) RunOnce(language, code string, opts *RunOnceOptions) (*RunResult, error) {
	if opts == nil {
		opts = &RunOnceOptions{}
	}
	params := map[string]any{"language": language, "code": code, "stream": opts.Stream}
	if opts.Capabilities != nil {
		params["capabilities"] = opts.Capabilities
	}
	if opts.Limits != nil {
		params["limits"] = opts.Limits
	}
	if opts.Filename != "" {
		params["filename"] = opts.Filename
	}
	if opts.Argv != nil {
		params["argv"] = opts.Argv
	}
	var result RunResult
	if err := c.Call(context.Background(), "run", params, &result, opts.OnOutput); err != nil {
		return nil, err
	}
	return &result, nil
}

// Close says goodbye ("shutdown", then the "exit" notification) and closes
// the connection; the daemon then closes this client's sessions. (A
// connection that just drops leaves them alive for the daemon's reconnect
// grace period, for a client reconnecting with the same id.)
func (c *Client) Close() error {
	c.mu.Lock()
	open := c.closed == nil
	c.mu.Unlock()
	if open {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if c.Call(ctx, "shutdown", nil, nil, nil) == nil {
			_ = c.Notify("exit", nil)
		}
		cancel()
	}
	c.shut(errors.New("the client is closed"))
	return c.finish()
}

// finish closes the connection, waits for the reader, and for a spawned
// daemon waits for it to exit (killing it after 10 s).
func (c *Client) finish() error {
	err := c.closer()
	if c.cmd != nil {
		exited := make(chan error, 1)
		go func() { exited <- c.cmd.Wait() }()
		select {
		case err = <-exited:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			err = <-exited
		}
	}
	select {
	case <-c.readerDone:
	case <-time.After(5 * time.Second):
	}
	return err
}

// Call sends any request and decodes its result into result (when not nil).
// A JSON-RPC error is returned as *RPCError. When ctx is done first, the
// request is cancelled with "$/cancelRequest" and ctx.Err() returned.
// onOutput, when not nil, gets the run/output notifications of this request.
func (c *Client) Call(ctx context.Context, method string, params any, result any, onOutput func(Output)) error {
	p := &pending{done: make(chan response, 1), onOutput: onOutput}
	c.mu.Lock()
	if c.closed != nil {
		err := c.closed
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = p
	c.mu.Unlock()
	message := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		message["params"] = params
	}
	if err := c.send(message); err != nil {
		c.forget(id)
		return err
	}
	select {
	case r := <-p.done:
		if r.err != nil {
			return r.err
		}
		if result != nil {
			return json.Unmarshal(r.result, result)
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		_ = c.Notify("$/cancelRequest", map[string]any{"id": id})
		return ctx.Err()
	}
}

// Notify sends a notification.
func (c *Client) Notify(method string, params any) error {
	message := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		message["params"] = params
	}
	return c.send(message)
}

func (c *Client) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Client) send(message any) error {
	body, err := json.Marshal(message)
	if err != nil {
		return err
	}
	frame := append([]byte("Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_, err = c.writer.Write(frame)
	return err
}

// readFrame reads one frame's body; io.EOF at a clean end between frames.
func (c *Client) readFrame() ([]byte, error) {
	length := -1
	headers := 0
	for {
		line, err := c.reader.ReadString('\n')
		if err != nil {
			if err == io.EOF && headers == 0 && line == "" {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading a frame header: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if headers == 0 {
				continue // blank lines between frames
			}
			break
		}
		headers++
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("bad frame header %q", line)
		}
		if strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 {
				return nil, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		}
	}
	if length < 0 {
		return nil, errors.New("a frame without Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(c.reader, body); err != nil {
		return nil, fmt.Errorf("reading a frame body: %w", err)
	}
	return body, nil
}

type incoming struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

func (c *Client) readLoop() {
	defer close(c.readerDone)
	reason := errors.New("the daemon closed the connection")
	for {
		body, err := c.readFrame()
		if err != nil {
			if err != io.EOF {
				reason = err
			}
			break
		}
		var message incoming
		if err := json.Unmarshal(body, &message); err != nil {
			reason = fmt.Errorf("a frame that is not a JSON-RPC message: %w", err)
			break
		}
		c.dispatch(&message)
	}
	c.shut(reason)
}

func (c *Client) dispatch(message *incoming) {
	switch {
	case message.Method == "":
		// A response to one of our requests.
		var id int64
		if json.Unmarshal(message.ID, &id) != nil {
			return
		}
		c.mu.Lock()
		p := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if p == nil {
			return
		}
		if message.Error != nil {
			p.done <- response{err: message.Error}
		} else {
			p.done <- response{result: message.Result}
		}
	case len(message.ID) > 0 && string(message.ID) != "null":
		// A request from the daemon.
		if message.Method == "host/call" {
			go c.serveHostCall(message.ID, message.Params)
		} else {
			c.reply(message.ID, nil, &RPCError{Code: CodeMethodNotFound, Message: "this client has no method `" + message.Method + "`"})
		}
	case message.Method == "run/output":
		var out Output
		if json.Unmarshal(message.Params, &out) != nil {
			return
		}
		callback := c.onOutput
		var id int64
		if json.Unmarshal(out.RequestID, &id) == nil {
			c.mu.Lock()
			if p := c.pending[id]; p != nil && p.onOutput != nil {
				callback = p.onOutput
			}
			c.mu.Unlock()
		}
		if callback != nil {
			func() {
				defer func() { _ = recover() }() // a faulty callback must not stop the reader
				callback(out)
			}()
		}
	}
}

func (c *Client) serveHostCall(id json.RawMessage, raw json.RawMessage) {
	var params struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(raw, &params); err != nil {
		c.reply(id, nil, &RPCError{Code: CodeInvalidParams, Message: err.Error()})
		return
	}
	fn := c.functions[params.Name]
	if fn == nil {
		c.reply(id, nil, &RPCError{Code: CodeMethodNotFound, Message: fmt.Sprintf("no host function named %q", params.Name)})
		return
	}
	if len(params.Args) == 0 {
		params.Args = json.RawMessage("null")
	}
	result, err := call(fn, params.Args)
	if err != nil {
		var rpcErr *RPCError
		if !errors.As(err, &rpcErr) {
			rpcErr = &RPCError{Code: CodeHostFunctionFailed, Message: err.Error()}
		}
		c.reply(id, nil, rpcErr)
		return
	}
	encoded, err := json.Marshal(result)
	if err != nil {
		c.reply(id, nil, &RPCError{Code: CodeHostFunctionFailed, Message: fmt.Sprintf("host function %q returned a value that is not JSON: %v", params.Name, err)})
		return
	}
	c.reply(id, json.RawMessage(encoded), nil)
}

// call runs a host function, turning a panic into an error.
func call(fn func(json.RawMessage) (any, error), args json.RawMessage) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the host function panicked: %v", p)
		}
	}()
	return fn(args)
}

func (c *Client) reply(id json.RawMessage, result json.RawMessage, rpcErr *RPCError) {
	message := map[string]any{"jsonrpc": "2.0", "id": id}
	if rpcErr != nil {
		message["error"] = rpcErr
	} else {
		message["result"] = result
	}
	_ = c.send(message) // when the connection is gone there is nobody to answer
}

// shut marks the client closed and fails every call still waiting.
func (c *Client) shut(reason error) {
	c.mu.Lock()
	if c.closed == nil {
		c.closed = fmt.Errorf("%w: %v", ErrClosed, reason)
	}
	waiting := c.pending
	c.pending = make(map[int64]*pending)
	err := c.closed
	c.mu.Unlock()
	for _, p := range waiting {
		p.done <- response{err: err}
	}
}
