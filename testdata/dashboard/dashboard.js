// Browser side of latch's dashboard end-to-end test. Drives Debian's
// headless Chromium with playwright-core:
//
//   node dashboard.js URL SCREENSHOT USER_DATA_DIR GONE_ADDR ADDR=REQUESTS...
//
// 1. opens URL (the dashboard) and waits until every ADDR shows exactly
//    REQUESTS requests, then prints {"event":"counts",...}; asks the
//    explain form about GET /hello and prints {"event":"explain",...};
//    then prints {"event":"ready"};
// 2. waits until GONE_ADDR is no longer shown (the Go test removes it
//    from latch's --file), then saves a screenshot to SCREENSHOT and prints
//    {"event":"done",...}.
// Every failure prints {"event":"error",...} and exits 1.
"use strict";

const { chromium } = require("playwright-core");

const [url, screenshot, userDataDir, gone, ...expected] = process.argv.slice(2);
const want = Object.fromEntries(expected.map((e) => {
  const i = e.lastIndexOf("=");
  return [e.slice(0, i), Number(e.slice(i + 1))];
}));

function emit(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }

async function readBackends(page) {
  return page.$$eval("[data-testid=backend]", (els) => els.map((e) => ({
    addr: e.dataset.addr,
    state: e.dataset.state,
    requests: Number(e.querySelector("[data-testid=requests]").textContent),
    stickySessions: Number(e.querySelector("[data-testid=sticky-sessions]").textContent),
    tunnels: Number(e.querySelector("[data-testid=tunnels]").textContent),
  })));
}

(async () => {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1200, height: 900 },
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on("pageerror", (err) => emit({ event: "pageerror", message: String(err) }));
    await page.goto(url);
    const deadline = Date.now() + 20000;
    let seen = [];
    for (;;) {
      seen = await readBackends(page);
      const ok = Object.entries(want).every(([addr, n]) =>
        seen.some((b) => b.addr === addr && b.requests === n));
      if (ok) break;
      if (Date.now() > deadline) throw new Error("the dashboard never showed " + JSON.stringify(want) + "; it shows " + JSON.stringify(seen));
      await page.waitForTimeout(200);
    }
    emit({ event: "counts", backends: seen });
    // The explain form asks /api/explain about a request without a cookie.
    await page.fill("#explain input[name=path]", "/hello");
    await page.click("#explain button");
    await page.waitForFunction(() => document.getElementById("explain-out").textContent.startsWith("route "));
    emit({ event: "explain", text: (await page.textContent("#explain-out")).split("\n").slice(0, 2).join("\n") });
    emit({ event: "ready" });
    await page.waitForSelector(`[data-testid=backend][data-addr="${gone}"]`, { state: "detached", timeout: 20000 });
    emit({ event: "gone", backends: await readBackends(page) });
    await page.screenshot({ path: screenshot, fullPage: true });
    emit({ event: "done", screenshot });
  } finally {
    await context.close();
  }
})().catch((err) => {
  emit({ event: "error", message: String(err && err.stack || err) });
  process.exit(1);
});
