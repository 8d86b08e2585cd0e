import { html } from "../../vendor/htm-preact-standalone.js";
import { request, get } from "../api.js";
import { setToken } from "../session.js";
import { ErrorMessage, PageTitle, useLoad, when } from "../ui.js";

export function Profile() {
  const [profile, error] = useLoad(() => get("/v1/auth/profile"), []);

  async function leave() {
    try {
      await request("POST", "/v1/auth/logout");
    } catch (e) {
      // The token is dropped from this tab either way: an expired one needs no revoking.
      console.warn("logout", e.message);
    }
    location.hash = "#/signin";
    setToken(null); // the app then forgets this session's commands and values too
  }

  return html`
    <${PageTitle}>Profile<//>
    <${ErrorMessage} error=${error} />
    ${profile && html`<section class="card"><dl class="details">
      <dt>Username</dt><dd>${profile.username}</dd>
      <dt>Role</dt><dd>${profile.role}</dd>
      <dt>Member since</dt><dd>${when(profile.created_at)}</dd>
      <dt>User id</dt><dd>${profile.user_id}</dd>
    </dl>
    <button type="button" onClick=${leave}>Sign out</button></section>`}`;
}
