// The dashboard's entry: finds the API, takes a key from the local stack's link, then routes by the URL
// fragment to one page. Every page talks to the real API; the key lives in sessionStorage only.
import { html, render, useEffect, useRef, useState } from "./html.js";
import { api, loadConfig } from "./api.js";
import { clearKey, storedKey, takeKeyFromFragment } from "./session.js";
import { navigate, useRoute } from "./router.js";
import { SignIn } from "./pages/sign_in.js";
import { SpecList, SpecPage, SpecEditor } from "./pages/specs.js";
import { RunList, NewRun } from "./pages/runs.js";
import { RunPage } from "./pages/run.js";
import { ReportPage } from "./pages/report.js";
import { DatasetsPage } from "./pages/datasets.js";
import { ModelList, ModelPage } from "./pages/models.js";
import { Playground } from "./pages/playground.js";
import { KeysPage } from "./pages/keys.js";

const SECTIONS = [
  ["specs", "Specs"],
  ["runs", "Runs"],
  ["datasets", "Datasets"],
  ["models", "Models"],
  ["playground", "Playground"],
  ["keys", "API keys"],
];

function page({ parts, query }, version) {
  const [section, id, sub] = parts;
  switch (section) {
    case "specs":
      if (id === "new") return html`<${SpecEditor} />`;
      if (id && sub === "edit") return html`<${SpecEditor} id=${id} />`;
      return id ? html`<${SpecPage} id=${id} />` : html`<${SpecList} />`;
    case "runs":
      if (id === "new") return html`<${NewRun} specId=${query.get("spec")} datasetId=${query.get("dataset")} />`;
      if (id && sub === "report") return html`<${ReportPage} id=${id} />`;
      return id ? html`<${RunPage} id=${id} />` : html`<${RunList} />`;
    case "datasets":
      return html`<${DatasetsPage} />`;
    case "models":
      return id ? html`<${ModelPage} id=${id} version=${version} />` : html`<${ModelList} />`;
    case "playground":
      return html`<${Playground} version=${version} model=${query.get("model")} />`;
    case "keys":
      return html`<${KeysPage} />`;
    default:
      return null;
  }
}

function App() {
  const route = useRoute();
  const [key, setKey] = useState(storedKey());
  const [version, setVersion] = useState(null);
  const main = useRef(null);
  useEffect(() => {
    api("/version", { key: null }).then(({ data }) => setVersion(data), () => setVersion(null));
  }, []);
  useEffect(() => {
    if (key && !route.parts.length) navigate("/specs");
  }, [key, route]);
  // A new page takes the focus, so keyboard and screen-reader users start at its top.
  useEffect(() => main.current?.querySelector("h1")?.focus(), [route.parts.join("/")]);
  const signOut = () => {
    clearKey();
    setKey(null);
    navigate("/");
  };
  const section = route.parts[0];
  return html`
    <a class="skip" href="#main" onClick=${(e) => (e.preventDefault(), main.current?.focus())}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/specs">Tuned Tensor</a>
      ${key &&
      html`<nav aria-label="Sections">
          <ul>
            ${SECTIONS.map(
              ([id, label]) => html`<li><a href=${`#/${id}`} aria-current=${section === id ? "page" : undefined}>${label}</a></li>`,
            )}
          </ul>
        </nav>
        <button type="button" class="secondary signout" onClick=${signOut}>Sign out</button>`}
    </header>
    <main id="main" ref=${main} tabindex="-1">
      ${key ? page(route, version) : html`<${SignIn} onSignedIn=${setKey} version=${version} />`}
    </main>
  `;
}

takeKeyFromFragment();
await loadConfig();
const root = document.getElementById("app");
root.textContent = ""; // the static "Loading…" line (Preact 11 renders beside what is there)
render(html`<${App} />`, root);
