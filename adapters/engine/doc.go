// Package engine declares what a scan engine is to the rest of Vega: the
// Finding it reports, the Target it scans, the Engine interface, and the two
// pieces every engine shares — the keyed Fingerprinter that gives a finding
// an identity across scans and line shifts, and the include/exclude glob
// matcher (Match).
//
// Concrete engines live in sub-packages (builtin, sarif, agent, ai). A secret
// value never leaves an engine except inside Finding.Match, which exists only
// so the fingerprint can be computed and is never serialised.
package engine
