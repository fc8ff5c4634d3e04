package auth

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestValidFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    string
		want bool
	}{
		{"plain", "a/b", true},
		{"hash alone", "#", true},
		{"plus alone", "+", true},
		{"hash last", "a/#", true},
		{"plus middle", "a/+/b", true},
		{"empty levels", "a//b", true},
		{"empty", "", false},
		{"hash not last", "a/#/b", false},
		{"hash in level", "a/b#", false},
		{"plus in level", "a/b+/c", false},
		{"nul", "a/\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidFilter(tt.f); got != tt.want {
				t.Fatalf("ValidFilter(%q) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

func TestFilterContainsTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		grant, sub string
		want       bool
	}{
		{"plus does not contain hash", "a/+", "a/#", false},
		{"hash contains plus path", "a/#", "a/+/b", true},
		{"hash contains parent", "a/#", "a", true},
		{"hash contains itself", "a/#", "a/#", true},
		{"plus contains literal", "a/+", "a/b", true},
		{"plus contains plus", "a/+", "a/+", true},
		{"literal does not contain plus", "a/b", "a/+", false},
		{"plus does not contain deeper", "a/+", "a/b/c", false},
		{"plus-hash does not contain parent hash", "a/+/#", "a/#", false},
		{"plus-hash contains plus", "a/+/#", "a/+", true},
		{"root hash contains all", "#", "x/y/#", true},
		{"root hash excludes SYS", "#", "$SYS/#", false},
		{"root plus excludes dollar", "+/x", "$y/x", false},
		{"dollar literal grant", "$y/+", "$y/x", true},
		{"different literal", "a/b", "a/c", false},
		{"longer grant", "a/b/c", "a/b", false},
		{"empty level literal", "a//b", "a//b", true},
		{"plus contains empty level", "a/+/b", "a//b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FilterContains(tt.grant, tt.sub); got != tt.want {
				t.Fatalf("FilterContains(%q, %q) = %v, want %v", tt.grant, tt.sub, got, tt.want)
			}
		})
	}
}

// refMatch is an independent recursive matcher used as the oracle.
func refMatch(f, t []string, first bool) bool {
	if len(f) == 0 {
		return len(t) == 0
	}
	if f[0] == "#" {
		return !(first && len(t) > 0 && strings.HasPrefix(t[0], "$"))
	}
	if len(t) == 0 {
		return false
	}
	if f[0] == "+" {
		if first && strings.HasPrefix(t[0], "$") {
			return false
		}
		return refMatch(f[1:], t[1:], false)
	}
	return f[0] == t[0] && refMatch(f[1:], t[1:], false)
}

// universe returns every topic of 1..depth levels over an alphabet that has a
// level no filter uses ("z"), an empty level and a $ level.
func universe(depth int) []string {
	alphabet := []string{"a", "b", "z", "", "$s"}
	var out []string
	var gen func(prefix []string)
	gen = func(prefix []string) {
		if len(prefix) > 0 {
			out = append(out, strings.Join(prefix, "/"))
		}
		if len(prefix) == depth {
			return
		}
		for _, l := range alphabet {
			gen(append(prefix[:len(prefix):len(prefix)], l))
		}
	}
	gen(nil)
	return out
}

func randomFilter(r *rand.Rand) string {
	levels := []string{"a", "b", "+", "", "$s"}
	n := 1 + r.IntN(3)
	parts := make([]string, 0, n+1)
	for range n {
		parts = append(parts, levels[r.IntN(len(levels))])
	}
	if r.IntN(3) == 0 {
		parts = append(parts, "#")
	}
	return strings.Join(parts, "/")
}

// TestMatchTopicAgainstOracle checks the fast matcher against the recursive
// reference on every (filter, topic) pair of a small universe.
func TestMatchTopicAgainstOracle(t *testing.T) {
	t.Parallel()
	topics := universe(4)
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		f := randomFilter(r)
		for _, topic := range topics {
			want := refMatch(strings.Split(f, "/"), strings.Split(topic, "/"), true)
			if got := MatchTopic(f, topic); got != want {
				t.Fatalf("MatchTopic(%q, %q) = %v, want %v", f, topic, got, want)
			}
		}
	}
}

// TestFilterContainsProperty checks containment against its definition:
// grant contains sub iff every topic sub matches, grant matches too. The
// universe has a level no filter names and one more level than any filter,
// so a counterexample exists in it whenever containment fails.
func TestFilterContainsProperty(t *testing.T) {
	t.Parallel()
	topics := universe(5)
	r := rand.New(rand.NewPCG(3, 4))
	var yes, no int
	for range 1500 {
		grant, sub := randomFilter(r), randomFilter(r)
		if ext := grant + "/" + randomFilter(r); r.IntN(4) == 0 && ValidFilter(ext) && strings.Count(ext, "/") < 4 {
			sub = ext // bias towards related pairs; at most 4 levels
		}
		want := true
		for _, topic := range topics {
			tl := strings.Split(topic, "/")
			if refMatch(strings.Split(sub, "/"), tl, true) && !refMatch(strings.Split(grant, "/"), tl, true) {
				want = false
				break
			}
		}
		if got := FilterContains(grant, sub); got != want {
			t.Fatalf("FilterContains(%q, %q) = %v, want %v", grant, sub, got, want)
		}
		if want {
			yes++
		} else {
			no++
		}
	}
	if yes < 50 || no < 50 {
		t.Fatalf("property test not exercising both outcomes: %d contained, %d not", yes, no)
	}
}

func TestSplitShared(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		in                string
		group, filter     string
		shared, wantValid bool
	}{
		{"not shared", "a/b", "", "a/b", false, true},
		{"shared", "$share/g/a/+", "g", "a/+", true, true},
		{"no filter", "$share/g", "g", "", true, false},
		{"empty group", "$share//a", "", "a", true, false},
		{"wildcard group", "$share/+/a", "+", "a", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, f, ok, valid := SplitShared(tt.in)
			if ok != tt.shared || valid != tt.wantValid || valid && (g != tt.group || f != tt.filter) {
				t.Fatalf("SplitShared(%q) = %q %q %v %v", tt.in, g, f, ok, valid)
			}
		})
	}
}
