/**
 * The set-up of the suites that sign people in at a real Keycloak through a gateway: the gateway's port
 * chosen first (the realm's redirect URIs name it), Keycloak and headless Chromium started side by side,
 * and the test realm (test/support/keycloak.ts) made through the admin API.
 */
import type { Browser } from 'playwright-core';
import { launchChromium, Profiles } from './chromium.js';
import { createTestRealm, KeycloakAdmin, launchKeycloak, type RunningKeycloak, type TestRealm } from './keycloak.js';
import { freePort } from './service.js';

export interface KeycloakWithBrowser {
  /** The port the suite's gateway must listen on, and its URL (the realm's redirect URIs point there). */
  readonly port: number;
  readonly url: string;
  readonly keycloak: RunningKeycloak;
  readonly admin: KeycloakAdmin;
  readonly realm: TestRealm;
  readonly chromium: Browser;
  readonly profiles: Profiles;
  /** Closes the browser profiles and Chromium, then stops Keycloak (the suite stops its gateway first). */
  close(): Promise<void>;
}

export async function startKeycloakWithBrowser(): Promise<KeycloakWithBrowser> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const [keycloak, chromium] = await Promise.all([launchKeycloak(), launchChromium()]);
  const profiles = new Profiles(chromium);
  const admin = new KeycloakAdmin(keycloak.url);
  await admin.login();
  const realm = await createTestRealm(admin, { redirectUris: [`${url}/oauth2/callback`], postLogoutRedirectUris: [`${url}/oauth2/signed_out`] });
  return {
    port, url, keycloak, admin, realm, chromium, profiles,
    async close() {
      await profiles.closeAll();
      await chromium.close();
      await keycloak.stop();
    },
  };
}
