// Checks goru_client.mjs against a running daemon:
//
//   goru-daemon --socket /tmp/goru.sock &
//   node client/node/test_client.mjs /tmp/goru.sock   # or GORU_SOCKET=/tmp/goru.sock
//
// Prints "ok" and exits 0 when every check passes; exits 1 naming the first
// that failed.

import { Client, GoruError, codes } from "./goru_client.mjs";

class CheckFailed extends Error {}

function expect(condition, what, got) {
  if (!condition) {
    throw new CheckFailed(got === undefined ? what : `${what}: got ${JSON.stringify(got)}`);
  }
}

function expectOk(result, stdout, what) {
  expect(
    result?.outcome === "ok" && result?.stdout === stdout,
    `${what}: expected outcome ok and stdout ${JSON.stringify(stdout)}`,
    result,
  );
}

// Two gathered calls meet here: served one after the other, the first would
// wait for the second forever.
function meeting(parties) {
  let arrived = 0;
  let open;
  const opened = new Promise((resolve) => (open = resolve));
  return async () => {
    arrived += 1;
    if (arrived === parties) open();
    await opened;
  };
}

async function check(socketPath) {
  const meet = meeting(2);
  const client = await Client.connect(socketPath, {
    hostFunctions: {
      add: ({ a, b }) => a + b,
      fail: () => {
        throw new Error("nope");
      },
      rendezvous: async ({ id }) => {
        await meet();
        return id;
      },
    },
  });
  try {
    expect(client.server?.protocolVersion === 1, "initialize: protocolVersion 1", client.server);

    const python = await client.createSession("python");
    expectOk(await client.run(python, 'print(call("add", a=2, b=3))'), "5\n", "a Python host call");

    expectOk(await client.run(python, "x = 41"), "", "Python: x = 41");
    expectOk(await client.run(python, "print(x + 1)"), "42\n", "Python: state across runs");

    let result = await client.run(python, 'call("fail")');
    expect(
      result.outcome === "exception" && (result.exception?.message ?? "").includes("nope"),
      "a failing host function: expected outcome exception with 'nope'",
      result,
    );

    const javascript = await client.createSession("javascript");
    expectOk(
      await client.run(javascript, 'console.log(call("add", {a: 2, b: 3}))'),
      "5\n",
      "a JavaScript host call",
    );

    const gathered =
      "const ids = await Promise.all([1, 2].map((id) => asyncCall('rendezvous', {id})));\n" +
      "console.log(JSON.stringify(ids));";
    expectOk(await client.run(javascript, gathered), "[1,2]\n", "two gathered host calls served at once");

    const chunks = [];
    result = await client.run(javascript, 'console.log("out"); console.error("err");', {
      stream: true,
      onOutput: (params) => chunks.push(params),
    });
    const streamed = (name) =>
      chunks
        .filter((c) => c.stream === name)
        .map((c) => c.data)
        .join("");
    expect(
      result.outcome === "ok" && result.stdout === "",
      "a streamed run: expected outcome ok and an empty stdout",
      result,
    );
    expect(
      streamed("stdout") === "out\n" && streamed("stderr") === "err\n",
      "a streamed run: expected out/err via run/output",
      chunks,
    );
    expect(
      chunks.every((c) => c.sessionId === javascript),
      "run/output names the session",
      chunks,
    );

    const ids = (await client.listSessions()).map((s) => s.sessionId).sort();
    expect(
      JSON.stringify(ids) === JSON.stringify([python, javascript].sort()),
      "session/list: both sessions",
      ids,
    );

    expectOk(
      await client.runOnce("javascript", 'console.log(call("add", {a: 20, b: 22}))'),
      "42\n",
      "a one-shot run with a host call",
    );

    await client.closeSession(javascript);
    for (const session of ["no-such-session", javascript]) {
      let error = null;
      try {
        await client.run(session, "1");
      } catch (err) {
        error = err;
      }
      expect(error instanceof GoruError, `session/run on ${session}: expected a GoruError`, String(error));
      expect(
        error.code === codes.UNKNOWN_SESSION,
        `session/run on ${session}: expected code -32001`,
        error.code,
      );
    }
  } finally {
    await client.close();
  }
}

const socketPath = process.argv[2] ?? process.env.GORU_SOCKET;
if (!socketPath) {
  console.error("usage: test_client.mjs SOCKET (or set GORU_SOCKET)");
  process.exit(1);
}
const watchdog = setTimeout(() => {
  console.error("FAIL (Node client): no answer within 120 s");
  process.exit(1);
}, 120_000);
try {
  await check(socketPath);
  clearTimeout(watchdog);
  console.log("ok");
} catch (err) {
  clearTimeout(watchdog);
  if (err instanceof CheckFailed) {
    console.error(`FAIL (Node client): ${err.message}`);
  } else {
    console.error("FAIL (Node client): unexpected error");
    console.error(err);
  }
  process.exit(1);
}
