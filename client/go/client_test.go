package goru_test

// Checks the client against a running daemon:
//
//	goru-daemon --socket /tmp/goru.sock &
//	cd client/go && GORU_SOCKET=/tmp/goru.sock go test ./...

import (
	"encoding/json"
	"errors"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	goru "goru.invalid/client"
)

type pair struct{ A, B float64 }

func add(raw json.RawMessage) (any, error) {
	var args pair
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, err
	}
	return args.A + args.B, nil
}

func fail(json.RawMessage) (any, error) {
	return nil, errors.New("nope")
}

// meeting returns a host function that answers once `parties` calls have
// arrived: served one after the other, the first would wait for the others
// until the timeout.
func meeting(parties int) func(json.RawMessage) (any, error) {
	var wg sync.WaitGroup
	wg.Add(parties)
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	return func(raw json.RawMessage) (any, error) {
		var args struct{ ID int }
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, err
		}
		wg.Done()
		select {
		case <-all:
			return args.ID, nil
		case <-time.After(20 * time.Second):
			return nil, errors.New("the other call never came: host calls were not served concurrently")
		}
	}
}

func connect(t *testing.T) *goru.Client {
	t.Helper()
	path := os.Getenv("GORU_SOCKET")
	if path == "" {
		t.Fatal("GORU_SOCKET is not set: start `goru-daemon --socket PATH` and set GORU_SOCKET=PATH")
	}
	client, err := goru.Connect(path, goru.Options{
		HostFunctions: map[string]func(json.RawMessage) (any, error){
			"add":        add,
			"fail":       fail,
			"rendezvous": meeting(2),
		},
	})
	if err != nil {
		t.Fatalf("connect to %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := client.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if client.Server.ProtocolVersion != 1 {
		t.Fatalf("initialize: protocolVersion %d", client.Server.ProtocolVersion)
	}
	return client
}

func createSession(t *testing.T, client *goru.Client, language string) string {
	t.Helper()
	id, err := client.CreateSession(language, nil)
	if err != nil {
		t.Fatalf("create a %s session: %v", language, err)
	}
	return id
}

func run(t *testing.T, client *goru.Client, session, code string, opts *goru.RunOptions) *goru.RunResult {
	t.Helper()
	result, err := client.Run(session, code, opts)
	if err != nil {
		t.Fatalf("run %q: %v", code, err)
	}
	return result
}

func expectOk(t *testing.T, result *goru.RunResult, stdout, what string) {
	t.Helper()
	if result.Outcome != "ok" || result.Stdout != stdout {
		t.Fatalf("%s: expected outcome ok and stdout %q, got %+v (exception %+v)", what, stdout, result, result.Exception)
	}
}

func TestPython(t *testing.T) {
	client := connect(t)
	session := createSession(t, client, "python")

	expectOk(t, run(t, client, session, `print(call("add", a=2, b=3))`, nil), "5\n", "a Python host call")
	expectOk(t, run(t, client, session, "x = 41", nil), "", "x = 41")
	expectOk(t, run(t, client, session, "print(x + 1)", nil), "42\n", "state across runs")

	result := run(t, client, session, `call("fail")`, nil)
	if result.Outcome != "exception" || result.Exception == nil || !strings.Contains(result.Exception.Message, "nope") {
		t.Fatalf("a failing host function: expected outcome exception with 'nope', got %+v (exception %+v)", result, result.Exception)
	}

	code := "import asyncio\n" +
		"async def main():\n" +
		"    return await asyncio.gather(async_call('rendezvous', id=1), async_call('rendezvous', id=2))\n" +
		"print(asyncio.run(main()))\n"
	expectOk(t, run(t, client, session, code, nil), "[1, 2]\n", "two gathered host calls served at once")

	var mu sync.Mutex
	streamed := map[string]string{}
	sessions := map[string]bool{}
	result = run(t, client, session, "import sys\nprint('out')\nprint('err', file=sys.stderr)", &goru.RunOptions{
		Stream: true,
		OnOutput: func(out goru.Output) {
			mu.Lock()
			defer mu.Unlock()
			streamed[out.Stream] += out.Data
			if out.SessionID != nil {
				sessions[*out.SessionID] = true
			}
		},
	})
	expectOk(t, result, "", "a streamed run")
	mu.Lock()
	defer mu.Unlock()
	if streamed["stdout"] != "out\n" || streamed["stderr"] != "err\n" {
		t.Fatalf("a streamed run: expected out/err via run/output, got %q", streamed)
	}
	if len(sessions) != 1 || !sessions[session] {
		t.Fatalf("run/output names the session %s: got %v", session, sessions)
	}
}

func TestJavaScript(t *testing.T) {
	client := connect(t)
	session := createSession(t, client, "javascript")
	expectOk(t, run(t, client, session, `console.log(call("add", {a: 2, b: 3}))`, nil), "5\n", "a JavaScript host call")

	result := run(t, client, session, `call("fail")`, nil)
	if result.Outcome != "exception" || result.Exception == nil || !strings.Contains(result.Exception.Message, "nope") {
		t.Fatalf("a failing host function: expected outcome exception with 'nope', got %+v (exception %+v)", result, result.Exception)
	}

	result, err := client.RunOnce("javascript", `console.log(call("add", {a: 20, b: 22}))`, nil)
	if err != nil {
		t.Fatalf("a one-shot run: %v", err)
	}
	expectOk(t, result, "42\n", "a one-shot run with a host call")
}

func TestSessions(t *testing.T) {
	client := connect(t)
	python := createSession(t, client, "python")
	javascript := createSession(t, client, "javascript")

	listed, err := client.ListSessions()
	if err != nil {
		t.Fatalf("session/list: %v", err)
	}
	var ids []string
	for _, s := range listed {
		ids = append(ids, s.SessionID)
	}
	sort.Strings(ids)
	want := []string{python, javascript}
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("session/list: expected %v, got %v", want, ids)
	}

	if err := client.CloseSession(javascript); err != nil {
		t.Fatalf("session/close: %v", err)
	}
	for _, session := range []string{"no-such-session", javascript} {
		_, err := client.Run(session, "1", nil)
		var rpcErr *goru.RPCError
		if !errors.As(err, &rpcErr) || rpcErr.Code != goru.CodeUnknownSession {
			t.Fatalf("session/run on %q: expected an RPCError with code %d, got %v", session, goru.CodeUnknownSession, err)
		}
	}
}
