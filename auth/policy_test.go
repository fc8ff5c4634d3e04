package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestClientIDFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		pattern   string
		identity  string
		requested string
		want      string // exact, or a regexp when it starts with ^
		err       error
	}{
		{"default pattern generates", "", "alice", "", `^alice-[0-9a-f]{16}$`, nil},
		{"default pattern accepts", "", "alice", "alice-phone", "alice-phone", nil},
		{"default pattern refuses other prefix", "", "alice", "bob-phone", "", ErrClientIDNotAllowed},
		{"default pattern refuses empty star", "", "alice", "alice-", "", ErrClientIDNotAllowed},
		{"star refuses wildcard chars", "", "alice", "alice-a/b", "", ErrClientIDNotAllowed},
		{"star refuses long", "", "alice", "alice-" + strings.Repeat("x", 65), "", ErrClientIDNotAllowed},
		{"exact pattern", "%u", "alice", "", "alice", nil},
		{"exact pattern accepts itself", "%u", "alice", "alice", "alice", nil},
		{"exact pattern refuses other", "%u", "alice", "alice-2", "", ErrClientIDNotAllowed},
		{"suffix pattern", "dev-*-x", "alice", "dev-7-x", "dev-7-x", nil},
		{"bad identity", "", "a/b", "", "", ErrInvalidIdentity},
		{"wildcard identity", "", "#", "", "", ErrInvalidIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Policy{ClientID: tt.pattern}.ClientIDFor(tt.identity, tt.requested)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if strings.HasPrefix(tt.want, "^") {
				if !regexp.MustCompile(tt.want).MatchString(got) {
					t.Fatalf("client id %q does not match %s", got, tt.want)
				}
			} else if got != tt.want {
				t.Fatalf("client id = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPoliciesFor(t *testing.T) {
	t.Parallel()
	ps := Policies{Identities: map[string]Policy{"alice": {Admin: true}}}
	if p, err := ps.For("alice"); err != nil || !p.Admin || p.TokenTTL != DefaultTokenTTL || p.ClientID != DefaultClientIDPattern {
		t.Fatalf("alice: %+v %v", p, err)
	}
	if _, err := ps.For("bob"); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("bob without default: %v", err)
	}
	ps.Default = &Policy{KeepAlive: 30e9}
	if p, err := ps.For("bob"); err != nil || p.KeepAlive != 30e9 || p.Admin {
		t.Fatalf("bob with default: %+v %v", p, err)
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	bad := Policy{ClientID: "a*b*", KeepAlive: -1, TokenTTL: -1, Publish: []string{"a/#/b"}}
	err := bad.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"more than one '*'", "keep_alive", "token_ttl", `"a/#/b"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q misses %q", err, want)
		}
	}
}
