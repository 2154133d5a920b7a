// Package sarif reads and writes SARIF 2.1.0, the OASIS standard format of
// static analysis results:
//
//   - Export writes a scan's findings as one run of the tool "Vega", in the
//     shape GitHub code scanning and other SARIF consumers read (rules with
//     tags, security-severity and help; results with relative locations,
//     redacted snippets, partialFingerprints and baselineState).
//   - Importer turns third-party documents (Semgrep, CodeQL, gitleaks, …)
//     into engine findings, within named limits, with paths confined to
//     the repository, secrets redacted and Vega's keyed fingerprints.
//   - Uploader makes an uploaded document the findings of a scan requested
//     with the sarif-upload engine (POST /api/v1/scans/{id}/sarif).
//
// Exported documents are validated against the official schema in the
// tests (the schema lives beside the checkout, in ../shared/testdata, and
// is never copied into the repository).
package sarif
