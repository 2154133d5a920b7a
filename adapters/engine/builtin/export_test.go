package builtin

// PatternFilters returns, for the rule with this ID, each pattern as
// written and a function reporting whether that pattern's literal
// prefilter admits a text; anchored says the text starts where the match
// does. It exists for the external tests.
func (e *Engine) PatternFilters(id string) (patterns []string, admits []func(text []byte, anchored bool) bool) {
	for _, r := range e.rules {
		if r.ID != id {
			continue
		}
		for i := range r.patterns {
			f := &r.filters[i]
			patterns = append(patterns, r.sources[i])
			admits = append(admits, func(text []byte, anchored bool) bool { return f.admits(text, anchored) })
		}
	}
	return patterns, admits
}
