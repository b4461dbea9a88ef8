// connect.js - the console's only way to cofferd: the Connect protocol (JSON), same origin, with
// the session cookie the browser sends by itself (HttpOnly: this script never sees it).

export class RpcError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

// A unary call: the response message, or an RpcError with Connect's code.
export async function call(service, method, message = {}) {
  const res = await fetch(`/${service}/${method}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
    body: JSON.stringify(message),
  });
  let body = {};
  try { body = await res.json(); } catch { /* an empty or broken body */ }
  if (!res.ok) throw new RpcError(body.code || "unknown", body.message || res.statusText);
  return body;
}

// A server stream: calls onMessage with each message until the stream ends or signal aborts.
export async function stream(service, method, message, onMessage, signal) {
  const env = new TextEncoder().encode(JSON.stringify(message));
  const body = new Uint8Array(5 + env.length);
  new DataView(body.buffer).setUint32(1, env.length);
  body.set(env, 5);
  const res = await fetch(`/${service}/${method}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/connect+json", "Connect-Protocol-Version": "1" },
    body,
    signal,
  });
  if (!res.ok || !res.body) throw new RpcError("unavailable", res.statusText);
  const reader = res.body.getReader();
  let buf = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
      if (buf.length < 5 + len) break;
      const flags = buf[0];
      const msg = JSON.parse(new TextDecoder().decode(buf.subarray(5, 5 + len)));
      buf = buf.slice(5 + len);
      if (flags & 2) {
        if (msg.error) throw new RpcError(msg.error.code, msg.error.message);
        return;
      }
      onMessage(msg);
    }
  }
}
