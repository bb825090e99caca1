// Drives /docs in headless Chromium (tests/api_docs/test_docs_ui.py runs it):
// opens /, authorizes with an API key, lists every operation the page shows, and
// submits the prefilled job with "Try it out". Prints one JSON report on stdout;
// the Python test asserts on it.
//   node docs_ui.mjs <base-url> <api-key>
import { chromium } from "playwright-core";

const [base, apiKey] = process.argv.slice(2);
const origin = new URL(base).origin;
const report = { foreign: [], consoleErrors: [], cspViolations: [] };

const browser = await chromium.launch({
  // Debian's chromium: playwright's own browser download is not reachable from here.
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith("data:") && new URL(url).origin !== origin) report.foreign.push(url);
  });
  page.on("console", (m) => { if (m.type() === "error") report.consoleErrors.push(m.text()); });
  await page.exposeFunction("reportCsp", (v) => report.cspViolations.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.reportCsp(`${e.violatedDirective} ${e.blockedURI}`));
  });

  const landing = await page.goto(base + "/", { waitUntil: "load" });
  report.landingStatus = landing.status();
  report.landingUrl = page.url();
  await page.waitForSelector(".opblock", { timeout: 20000 });
  report.title = await page.locator(".information-container .title").first().innerText();
  report.operationIds = await page
    .locator(".opblock-summary-operation-id")
    .allInnerTexts();

  // Authorize: the bearer scheme takes the API key.
  await page.click("button.authorize");
  const bearer = page.locator(".auth-container", { hasText: "bearer" });
  await bearer.locator("input").fill(apiKey);
  await bearer.locator("button.authorize").click();
  await page.click("button.btn-done");

  // Try it out on submitJob, with the request body the page prefills (the first example).
  const op = page.locator("#operations-Jobs-submitJob");
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  report.prefilledBody = JSON.parse(await op.locator("textarea.body-param__text").inputValue());
  await op.locator("button.execute").click();
  const live = op.locator(".live-responses-table .response");
  await live.first().waitFor({ timeout: 20000 });
  report.tryItOutStatus = (await live.locator(".response-col_status").first().innerText()).trim();
  report.tryItOutBody = JSON.parse(
    await live.locator(".response-col_description pre.microlight").first().innerText(),
  );
  report.tryItOutText = await live.first().innerText();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
