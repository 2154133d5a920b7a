package agent

import (
	"errors"
	"fmt"
	"strings"
)

// SplitArgs splits a command line into arguments without a shell: white
// space separates arguments; single quotes keep everything literally;
// double quotes keep white space and honour backslash before '"' and '\';
// a backslash outside quotes escapes the next character. Nothing is
// expanded ($VAR, globs, ~). It fails on an unterminated quote or a
// trailing backslash.
func SplitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inArg = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inArg = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inArg = true
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// ParseEnvMapping parses VEGA_ENGINE_AGENT_ENV: comma-separated NAME=url or
// NAME=token pairs naming the extra variables that carry the proxy's URL or
// the scan's token (for example "CODEX_API_BASE=url,CODEX_API_KEY=token").
// Empty input is an empty mapping.
func ParseEnvMapping(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !validEnvName(k) || (v != "url" && v != "token") {
			return nil, fmt.Errorf("agent env mapping %q: want NAME=url or NAME=token", pair)
		}
		switch k {
		case "PATH", "HOME", "TMPDIR", OutputEnv:
			return nil, fmt.Errorf("agent env mapping %q: %s is set by Vega", pair, k)
		}
		m[k] = v
	}
	return m, nil
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
