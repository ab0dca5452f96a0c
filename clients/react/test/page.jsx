// The test page: two components on one model (ids a and b), each exposing its hook's
// result on window.hooks and its state in the DOM, so the test can drive and read them.
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { HubClient } from "flushout-hub-client";
import { FlushoutProvider, useFlushout } from "flushout-hub-react";

const params = new URLSearchParams(location.search);
const list = params.get("list") || "todos:hook";
window.hooks = {};
window.renders = { a: 0, b: 0 };

function Probe({ id }) {
  const h = useFlushout(list);
  window.hooks[id] = h;
  window.renders[id]++;
  useEffect(() => {
    if (id === "a" && params.get("name")) h.setPresence({ name: params.get("name"), who: id });
  }, [h.setPresence, id]);
  const state = { doc: h.doc ?? null, presence: h.presence, error: h.error && { code: h.error.code, message: h.error.message } };
  return (
    <pre id={id} data-status={h.status} data-pending={h.pending} data-ready={String(h.ready)}>
      {JSON.stringify(state)}
    </pre>
  );
}

function App() {
  const [shown, setShown] = useState({ a: true, b: params.get("two") === "1" });
  window.setShown = setShown;
  return (
    <>
      {shown.a && <Probe id="a" />}
      {shown.b && <Probe id="b" />}
    </>
  );
}

const client = new HubClient({ url: params.get("url") || undefined, backoffInitial: 100, backoffMax: 400 });
window.client = client;
createRoot(document.getElementById("root")).render(
  <FlushoutProvider client={client}>
    <App />
  </FlushoutProvider>
);
