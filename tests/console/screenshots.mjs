// tests/console/screenshots.mjs - the pictures of docs/console.md, taken from a running cofferd
// (scripts/dev screenshots starts one and seeds a demo project), so they follow the code.
//   node screenshots.mjs BASE_URL ADMIN_TOKEN_FILE OUT_DIR
import { readFileSync, mkdirSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [BASE, TOKEN_FILE, OUT] = process.argv.slice(2);
const ADMIN = readFileSync(TOKEN_FILE, "utf8").trim();
mkdirSync(OUT, { recursive: true });
const browser = await puppeteer.launch({ executablePath: process.env.COFFER_CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
const page = await browser.newPage();
await page.setViewport({ width: 1100, height: 640 });
const shot = (name) => page.screenshot({ path: `${OUT}/${name}.png` });
const click = async (name) => (await page.waitForSelector(`::-p-aria([name="${name}"][role="button"]), ::-p-aria([name="${name}"][role="menuitem"])`)).click();
const settle = () => new Promise((r) => setTimeout(r, 400));

await page.goto(`${BASE}/`, { waitUntil: "networkidle0" });
await shot("sign-in");
await (await page.waitForSelector("::-p-aria(Token)")).type(ADMIN);
await click("Sign in");
await page.waitForSelector("::-p-aria(New Project)");
await page.goto(`${BASE}/projects/support-bot/secrets`, { waitUntil: "networkidle2" });
await click("Reveal OPENAI_API_KEY");
await settle();
await shot("secrets");
await click("More actions for OPENAI_API_KEY");
await settle();
await shot("secret-actions");
await page.goto(`${BASE}/projects/support-bot/environments/staging/overrides/draft`, { waitUntil: "networkidle2" });
await settle();
await shot("overrides");
await page.goto(`${BASE}/projects/support-bot/environments`, { waitUntil: "networkidle2" });
await click("More actions for staging");
await click("Merge into main");
await page.waitForSelector("dialog[open]");
await settle();
await shot("merge");
await page.goto(`${BASE}/projects/support-bot/playground`, { waitUntil: "networkidle2" });
await (await page.waitForSelector("::-p-aria(Tool input)")).type("Authorization: Bearer {OPEN");
await settle();
await shot("playground");
await browser.close();
console.log(`screenshots in ${OUT}`);
