package httpapi_test

import (
	"sort"
	"strings"
)

func sortStrings(s []string) { sort.Strings(s) }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
