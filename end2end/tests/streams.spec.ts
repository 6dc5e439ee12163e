import { test, expect, APIRequestContext } from '@playwright/test';
import { api, hydrated, signIn } from './helpers';

/** Calls the JSON API with a receiver's key. */
async function asReceiver(request: APIRequestContext, key: string, method: string, path: string, data?: unknown) {
  const resp = await request.fetch(path, {
    method,
    data: data === undefined ? undefined : JSON.stringify(data),
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
  });
  return { status: resp.status(), body: await resp.json() };
}

test('an administrator pauses and disables a receiver\'s stream from the Signals page', async ({ page, request }) => {
  // Streams last for the whole run: a name of this run's own.
  const name = `e2e-receiver-${Date.now()}`;
  const created = await api(request, 'POST', '/api/v1/api-keys', { name, scopes: ['ssf:receiver'] });
  expect(created.status).toBe(201);
  const key: string = created.body.secret;
  const stream = await asReceiver(request, key, 'POST', '/api/v1/ssf/streams', { description: 'e2e receiver' });
  expect(stream.status).toBe(201);
  const streamId: string = stream.body.stream_id;
  expect(stream.body.delivery.method).toBe('urn:ietf:rfc:8936');

  await signIn(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Signals' }).click();
  await expect(page.locator('h1')).toHaveText('Shared Signals streams');
  await hydrated(page);
  const row = page.locator(`table.streams tr[data-stream="${streamId}"]`);
  await expect(row).toContainText(name);
  await expect(row).toContainText('e2e receiver');
  await expect(row).toContainText(`ssf:${streamId}`);
  await expect(row).toContainText('poll');
  await expect(row).toContainText('every realm');
  await expect(row).toContainText('session-revoked');
  await expect(row.locator('.status')).toHaveText('enabled');
  // Only the statuses it has not are offered.
  await expect(row.getByRole('button')).toHaveText(['Pause', 'Disable']);

  await row.getByLabel(`Reason for the stream of ${name}`).fill('e2e: investigating the receiver');
  await row.getByRole('button', { name: `Pause the stream of ${name}` }).click();
  await expect(page.getByRole('status')).toHaveText(`The stream of receiver '${name}' is now paused.`);
  await expect(row.locator('.status')).toHaveText('paused');
  await expect(row.getByRole('button')).toHaveText(['Enable', 'Disable']);
  await expect(row).toContainText('set by an administrator');
  await expect(row).toContainText('e2e: investigating the receiver');
  await page.screenshot({ path: 'test-results/streams.png', fullPage: true });

  // The receiver reads the status, and cannot change it back.
  const status = await asReceiver(request, key, 'GET', `/api/v1/ssf/streams/status?stream_id=${streamId}`);
  expect(status.status).toBe(200);
  expect(status.body).toMatchObject({ stream_id: streamId, status: 'paused', reason: 'e2e: investigating the receiver' });
  const undo = await asReceiver(request, key, 'POST', '/api/v1/ssf/streams/status', { stream_id: streamId, status: 'enabled' });
  expect(undo.status).toBe(403);

  // Disabled without a reason: the reason goes.
  await row.getByRole('button', { name: `Disable the stream of ${name}` }).click();
  await expect(page.getByRole('status')).toHaveText(`The stream of receiver '${name}' is now disabled.`);
  await expect(row.locator('.status')).toHaveText('disabled');
  await expect(row).not.toContainText('investigating');
  const disabled = await asReceiver(request, key, 'GET', `/api/v1/ssf/streams/status?stream_id=${streamId}`);
  expect(disabled.body.status).toBe('disabled');

  // Enabled again: the receiver may change it once more.
  await row.getByRole('button', { name: `Enable the stream of ${name}` }).click();
  await expect(row.locator('.status')).toHaveText('enabled');
  await expect(row).not.toContainText('set by an administrator');
  const enabled = await asReceiver(request, key, 'GET', `/api/v1/ssf/streams/status?stream_id=${streamId}`);
  expect(enabled.body.status).toBe('enabled');

  // Each change is audited.
  const audit = await api(request, 'GET', '/api/v1/audit?count=100');
  const actions = audit.body.results
    .filter((e: { target: string }) => e.target === `stream:${streamId}`)
    .map((e: { action: string }) => e.action);
  expect(actions).toEqual(expect.arrayContaining(['stream_paused', 'stream_disabled', 'stream_enabled']));
});

test('a Shared Signals receiver key is created from the API keys page', async ({ page, request }) => {
  const name = `e2e-ui-receiver-${Date.now()}`;
  await signIn(page);
  await page.goto('/api-keys');
  await hydrated(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('sessions:issue').uncheck();
  await page.getByLabel('Shared Signals receiver').check();
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = (await page.locator('code.secret').textContent())!.trim();
  const keyRow = page.locator('table.api-keys tr').filter({ hasText: name });
  await expect(keyRow).toContainText('ssf:receiver');
  await expect(keyRow).not.toContainText('sessions:issue');
  // The key manages a stream, which the Signals page then lists.
  const stream = await asReceiver(request, secret, 'POST', '/api/v1/ssf/streams', {});
  expect(stream.status).toBe(201);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Signals' }).click();
  await expect(page.locator(`table.streams tr[data-stream="${stream.body.stream_id}"]`)).toContainText(name);
  await page.goto('/api-keys');
  await hydrated(page);
  await page.getByRole('button', { name: `Revoke ${name}` }).click();
  await expect(page.locator('table.api-keys')).not.toContainText(name);
});
