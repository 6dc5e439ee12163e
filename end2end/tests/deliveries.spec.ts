import { test, expect } from '@playwright/test';
import * as http from 'http';
import { AddressInfo } from 'net';
import { api, hydrated, signIn } from './helpers';

/** The claims of a JWT, without checking it (the Rust tests verify signatures). */
function claims(jwt: string) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

test('a revocation notifies its clients, and a failing client is retried from the deliveries page', async ({ page, request }) => {
  // A relying party on loopback: /shop answers 200; /forum answers 503 until it is fixed.
  const received: { path: string; token: string }[] = [];
  let forumStatus = 503;
  const rp = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const status = req.url === '/forum' ? forumStatus : 200;
      if (status === 200) {
        received.push({ path: req.url ?? '', token: new URLSearchParams(body).get('logout_token') ?? '' });
      }
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  const port = (rp.address() as AddressInfo).port;
  try {
    expect((await api(request, 'PUT', '/api/v1/realms/e2e-bc', {})).status).toBe(200);
    for (const client of ['shop', 'forum']) {
      const reg = await api(request, 'PUT', `/api/v1/realms/e2e-bc/clients/${client}`, {
        name: `The ${client}`, backchannel_logout_uri: `http://127.0.0.1:${port}/${client}`,
      });
      expect(reg.status).toBe(200);
    }
    const created = await api(request, 'POST', '/api/v1/realms/e2e-bc/sessions', {
      subject_id: 'bc-user', display_name: 'Back Channel', client_ids: ['shop', 'forum'],
    });
    const sid = created.body.sid;
    const grant = await api(request, 'POST', '/api/v1/realms/e2e-bc/grants', {
      kind: 'refresh_token', subject_id: 'bc-user', sid, client_id: 'shop',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(), token: 'e2e-refresh-token-of-bc-user', scopes: ['openid'],
    });
    expect(grant.status).toBe(201);

    await signIn(page);
    await page.goto(`/sessions/e2e-bc/${sid}`);
    // Clicks before hydration land on server-rendered buttons without handlers.
    await hydrated(page);
    await expect(page.locator('table.grants tbody tr')).toHaveCount(1);
    await expect(page.locator('table.grants')).toContainText('refresh token');
    await page.getByRole('button', { name: 'End this session' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('status')).toHaveText(
      'Ended 1 session, 2 clients affected, 1 token revoked, 2 logout notifications queued.');
    const introspected = await api(request, 'POST', '/api/v1/realms/e2e-bc/grants/introspect', { token: 'e2e-refresh-token-of-bc-user' });
    expect(introspected.body).toEqual({ active: false });

    await page.getByRole('link', { name: 'Deliveries' }).click();
    await expect(page.locator('h1')).toHaveText('Back-channel logout deliveries');
    await page.getByLabel('Realm').selectOption('e2e-bc');
    await page.getByRole('button', { name: 'Show' }).click();
    const shop = page.locator('table.deliveries tbody tr').filter({ hasText: 'shop' });
    const forum = page.locator('table.deliveries tbody tr').filter({ hasText: 'forum' });
    await expect(async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect(shop.locator('.status')).toHaveText('delivered', { timeout: 1000 });
      await expect(forum).toContainText('HTTP 503', { timeout: 1000 });
    }).toPass();
    await expect(forum.locator('.status')).toHaveText('pending');
    await page.screenshot({ path: 'test-results/deliveries.png', fullPage: true });

    forumStatus = 200;
    await forum.getByRole('button', { name: /Retry delivery \d+ now/ }).click();
    await expect(page.getByRole('status')).toContainText('is queued for an attempt now');
    await expect(async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect(forum.locator('.status')).toHaveText('delivered', { timeout: 1000 });
    }).toPass();
    await page.getByRole('link', { name: /Failed/ }).click();
    await expect(page.locator('.notice.empty')).toBeVisible();

    expect(received.map((r) => r.path).sort()).toEqual(['/forum', '/shop']);
    for (const r of received) {
      const c = claims(r.token);
      expect(c.aud).toBe(r.path.slice(1));
      expect(c.sub).toBe('bc-user');
      expect(c.sid).toBe(sid);
      expect(c.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      expect(c.nonce).toBeUndefined();
    }
  } finally {
    rp.close();
  }
});
