import { test, expect, Page } from '@playwright/test';
import * as http from 'http';
import { AddressInfo } from 'net';
import { api, hydrated, signIn } from './helpers';

const realm = 'e2e-overview';

/** The numbers a chart draws: each bucket's (or bar's) total, in order. */
async function drawn(page: Page, chart: string): Promise<number[]> {
  const totals = await page.locator(`[data-chart="${chart}"] g.bucket`).evaluateAll(
    (gs) => gs.map((g) => g.getAttribute('data-total')));
  return totals.map(Number);
}

/** The figure a headline tile shows. */
async function tile(page: Page, id: string): Promise<number> {
  const text = await page.locator(`[data-tile="${id}"] .tile-value`).innerText();
  return Number(text.replace(/,/g, ''));
}

/** A legend entry's total, by the series' name. */
async function legend(page: Page, chart: string, name: string): Promise<number> {
  const entry = page.locator(`[data-chart="${chart}"] .legend li`, { hasText: name });
  return Number((await entry.locator('.legend-total').innerText()).replace(/,/g, ''));
}

type Bucket = {
  start: string; active_sessions: number; sign_ins: number;
  ended: Record<string, number>; deliveries: Record<string, number>;
};
const sum = (bs: Bucket[], f: (b: Bucket) => number) => bs.reduce((n, b) => n + f(b), 0);
const endedTotal = (b: Bucket) => Object.values(b.ended).reduce((n, v) => n + v, 0);
const attempts = (b: Bucket) => Object.values(b.deliveries).reduce((n, v) => n + v, 0);

test('the overview draws the numbers the API answers, and they count what was done', async ({ page, request }) => {
  // A relying party on loopback that acknowledges every logout token.
  let received = 0;
  const rp = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => { received += 1; res.statusCode = 200; res.end(); });
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  const port = (rp.address() as AddressInfo).port;
  try {
    expect((await api(request, 'PUT', `/api/v1/realms/${realm}`, {})).status).toBe(200);
    const portal = await api(request, 'PUT', `/api/v1/realms/${realm}/clients/portal`, {
      name: 'Customer portal', backchannel_logout_uri: `http://127.0.0.1:${port}/logout`,
    });
    expect(portal.status).toBe(200);
    expect((await api(request, 'PUT', `/api/v1/realms/${realm}/clients/mail`, { name: 'Webmail' })).status).toBe(200);

    // Seven sign-ins: all join the portal, three also the webmail.
    const created: { sid: string; token: string }[] = [];
    for (let i = 0; i < 7; i++) {
      const c = await api(request, 'POST', `/api/v1/realms/${realm}/sessions`, {
        subject_id: `user-${i}`, display_name: `User ${i}`,
        client_ids: i < 3 ? ['portal', 'mail'] : ['portal'],
      });
      expect(c.status).toBe(201);
      created.push({ sid: c.body.sid, token: c.body.token });
    }
    // One logout, two removals by an administrator (with a free-text reason).
    const logout = await api(request, 'POST', `/api/v1/realms/${realm}/sessions/logout`, { token: created[0].token });
    expect(logout.body.logged_out).toBe(true);
    const removal = await api(request, 'POST', `/api/v1/realms/${realm}/sessions/end`, {
      sids: [created[1].sid, created[2].sid], reason: 'ticket 1234: lost laptop',
    });
    expect(removal.status).toBe(200);
    expect(removal.body.sessions_removed).toBe(2);
    // Each ending notifies the portal once; wait until the three attempts are counted.
    await expect.poll(async () => {
      const o = await api(request, 'GET', `/api/v1/realms/${realm}/overview`);
      return sum(o.body.daily, (b: Bucket) => b.deliveries.delivered);
    }, { timeout: 30_000 }).toBe(3);
    expect(received).toBe(3);

    await signIn(page);
    await page.getByRole('link', { name: 'Overview' }).click();
    await expect(page.locator('h1')).toHaveText('Overview');
    await page.goto(`/realms/${realm}/overview`);
    await hydrated(page);
    await expect(page.locator('[data-chart="sign-ins"]')).toBeVisible();

    const { status, body: overview } = await api(request, 'GET', `/api/v1/realms/${realm}/overview`);
    expect(status).toBe(200);
    const hourly: Bucket[] = overview.hourly;
    const daily: Bucket[] = overview.daily;

    // What was done, as the API counts it.
    expect(overview.session_count).toBe(4);
    expect(sum(hourly, (b) => b.sign_ins)).toBe(7);
    expect(sum(hourly, (b) => b.ended.logout)).toBe(1);
    expect(sum(hourly, (b) => b.ended.revoked)).toBe(2);
    expect(sum(daily, endedTotal)).toBe(3);
    expect(hourly[hourly.length - 1].active_sessions).toBe(4);
    expect(hourly[0].active_sessions).toBe(0);

    // What the page draws, against the API.
    expect(await tile(page, 'sessions')).toBe(overview.session_count);
    expect(await tile(page, 'sign-ins-24h')).toBe(sum(hourly, (b) => b.sign_ins));
    expect(await tile(page, 'ended-24h')).toBe(sum(hourly, endedTotal));
    expect(await tile(page, 'attempts-30d')).toBe(sum(daily, attempts));
    expect(await drawn(page, 'active-24h')).toEqual(hourly.map((b) => b.active_sessions));
    expect(await drawn(page, 'active-30d')).toEqual(daily.map((b) => b.active_sessions));
    expect(await drawn(page, 'sign-ins')).toEqual(hourly.map((b) => b.sign_ins));
    expect(await drawn(page, 'ended')).toEqual(daily.map(endedTotal));
    expect(await drawn(page, 'deliveries')).toEqual(daily.map(attempts));
    expect(await legend(page, 'ended', 'Logout')).toBe(sum(daily, (b) => b.ended.logout));
    expect(await legend(page, 'ended', 'Ended by an administrator')).toBe(sum(daily, (b) => b.ended.revoked));
    expect(await legend(page, 'deliveries', 'Delivered')).toBe(3);
    await expect(page.locator('[data-chart="sign-ins"] .chart-summary')).toHaveText(
      '7 sign-ins in the last 24 hours; at most 7 in an hour');
    // Sessions per client, the most first: the portal has the four left, the webmail none.
    const clients = [...overview.clients].sort((a, b) => b.session_count - a.session_count);
    expect(clients.map((c: { session_count: number }) => c.session_count)).toEqual([4, 0]);
    expect(await drawn(page, 'clients')).toEqual(clients.map((c: { session_count: number }) => c.session_count));
    await expect(page.locator('[data-chart="clients"] .item-label')).toHaveText(['Customer portal', 'Webmail']);
    // Every bucket names its figures in a tooltip, and each chart has an accessible label.
    const now = page.locator('[data-chart="sign-ins"] g.bucket').last();
    await expect(now.locator('title')).toContainText(': 7');
    await expect(page.getByRole('img', { name: /^Sign-ins per hour\. 7 sign-ins/ })).toBeVisible();

    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.screenshot({ path: '/tmp/overview-e2e.png', fullPage: true });

    // The realm picker switches realms; the demo realm's figures come from its seeded history.
    await page.getByLabel('Realm').selectOption('demo');
    await expect(page).toHaveURL(/\/realms\/demo\/overview$/);
    const demo = (await api(request, 'GET', '/api/v1/realms/demo/overview')).body;
    await expect.poll(() => tile(page, 'sessions')).toBe(demo.session_count);
    expect(await drawn(page, 'active-30d')).toEqual(demo.daily.map((b: Bucket) => b.active_sessions));
    await page.screenshot({ path: '/tmp/overview-demo.png', fullPage: true });

    // On a phone the page does not scroll sideways (a chart scrolls within its card).
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: '/tmp/overview-phone.png', fullPage: false });
  } finally {
    rp.close();
  }
});
