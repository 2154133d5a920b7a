// Package browsertest drives the dashboard in headless Chromium (chromedp)
// over the whole server: the event store, projections, queries, the bus,
// the JSON API with its SSE feeds, the dashboard, the scan worker with an
// in-process runner and the classifier. Its tests are the only code here.
//
// Chromium is /usr/bin/chromium (Debian's chromium package) or the path in
// VEGA_CHROMIUM. Without it the suite skips, or fails with CI=true.
// Screenshots of failures go to VEGA_BROWSER_ARTIFACTS, or to a fresh
// temporary directory named in the failure message.
package browsertest
