// API keys: the list (revoked ones included), create (the secret is shown once, with a copy button) and
// revoke; the API refuses to revoke the last active key and the page shows its message.
import { html, useState } from "../html.js";
import { api, apiList } from "../api.js";
import { Async, CodeLine, ConfirmButton, Empty, ErrorMessage, useResource, when } from "../components.js";

export function KeysPage() {
  const keys = useResource(() => apiList("/api-keys"), []);
  const [name, setName] = useState("");
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const create = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const { data } = await api("/api-keys", { method: "POST", body: { name } });
      setCreated(data);
      setName("");
      keys.reload(true);
    } catch (failure) {
      setError(failure);
    }
  };
  const revoke = async (id) => {
    setError(null);
    try {
      await api(`/api-keys/${id}`, { method: "DELETE" });
      keys.reload(true);
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section>
    <h1 tabindex="-1">API keys</h1>
    <form class="inline-form" onSubmit=${create}>
      <label for="key-name">New key name</label>
      <input id="key-name" value=${name} onInput=${(e) => setName(e.currentTarget.value)} required maxlength="255" />
      <button type="submit">Create key</button>
    </form>
    ${created && html`<div class="state good new-key" role="status">
      <p>Key “${created.name}” created. Copy it now: it is shown only once.</p>
      <${CodeLine} text=${created.key} label="Copy the new API key" />
      <button type="button" class="secondary" onClick=${() => setCreated(null)}>Done</button>
    </div>`}
    <${ErrorMessage} error=${error} />
    <${Async} resource=${keys}>${(rows) =>
      rows.length === 0
        ? html`<${Empty}><p>No keys.</p><//>`
        : html`<div class="scroll"><table>
            <caption class="visually-hidden">API keys</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>${rows.map((k) => html`<tr>
              <td>${k.name}</td><td><code>${k.key_prefix}…</code></td><td>${when(k.created_at)}</td><td>${when(k.last_used_at)}</td>
              <td>${k.revoked_at ? `revoked ${when(k.revoked_at)}` : "active"}</td>
              <td>${!k.revoked_at && html`<${ConfirmButton} label="Revoke" question=${`Revoke key “${k.name}”? Clients using it stop working.`} onConfirm=${() => revoke(k.id)} />`}</td>
            </tr>`)}</tbody>
          </table></div>`}<//>
  </section>`;
}
