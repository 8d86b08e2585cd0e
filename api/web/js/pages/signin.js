import { html, useState } from "../../vendor/htm-preact-standalone.js";
import { post } from "../api.js";
import { setToken } from "../session.js";
import { ErrorMessage, PageTitle } from "../ui.js";

export function SignIn() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function run(register) {
    setBusy(true);
    setError(null);
    try {
      const credentials = { username, password };
      if (register) await post("/v1/auth/register", credentials);
      const { access_token } = await post("/v1/auth/login", credentials);
      location.hash = "#/dashboard";
      setToken(access_token);
    } catch (e) {
      setError(e.message);
      setBusy(false);
    }
  }

  return html`
    <section class="card narrow">
      <${PageTitle}>Sign in<//>
      <form onSubmit=${(e) => (e.preventDefault(), run(false))}>
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required value=${username}
          onInput=${(e) => setUsername(e.target.value)} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
        <p class="hint">New here? Choose a username (3–32 letters, digits, <code>_ . -</code>) and a
          password of 10 or more characters with a letter and a digit or symbol, then create your
          account.</p>
        <${ErrorMessage} error=${error} />
        <div class="actions">
          <button type="submit" disabled=${busy}>Sign in</button>
          <button type="button" class="secondary" disabled=${busy} onClick=${(e) => e.target.form.reportValidity() && run(true)}>
            Create account
          </button>
        </div>
      </form>
    </section>`;
}
