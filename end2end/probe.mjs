import { chromium } from '@playwright/test';
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const ctx = await b.newContext();
await ctx.addCookies([{ name: 'sessions_admin', value: process.env.TOK, url: 'http://127.0.0.1:3191' }]);
const p = await ctx.newPage();
p.on('console', m => console.log('console', m.type(), m.text().slice(0, 300)));
p.on('pageerror', e => console.log('pageerror', String(e).slice(0, 300)));
await p.goto('http://127.0.0.1:3191' + (process.env.URL ?? '/?realm=e2e-live'));
await p.waitForTimeout(3000);
console.log('hydrated', await p.locator('header').getAttribute('data-hydrated'));
if (!process.env.URL) {
await p.getByRole('button', { name: 'Sign out all sessions in this realm' }).click({ timeout: 5000 });
await p.waitForTimeout(500);
console.log('dialogs', await p.getByRole('dialog').count());
}
console.log('url', p.url());
await b.close();
