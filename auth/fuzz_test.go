package auth

import (
	"strings"
	"testing"
)

// FuzzVerify: no input panics the verifier, and nothing but the untouched
// token verifies. `go test -fuzz FuzzVerify ./auth` explores further.
func FuzzVerify(f *testing.F) {
	ks := mustKeySet(f, "k1", mustKey(f, "k1"))
	good := mustSign(f, ks, testClaims())
	v := NewVerifier(ks.Public(), VerifierOptions{})
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, t0)
		if err == nil && tok != good {
			// A different encoding of the same signed bytes would be a
			// malleability bug; anything else verifying is a forgery.
			t.Fatalf("token %q verified as %+v", tok, c)
		}
	})
}

// FuzzFilterContains: containment is consistent with matching. If grant
// contains sub, every topic made from sub by filling its wildcards matches
// grant; a filter always contains itself.
func FuzzFilterContains(f *testing.F) {
	for _, s := range [][2]string{{"a/+", "a/#"}, {"a/#", "a/+/b"}, {"#", "$SYS/#"}, {"+/+", "a/b"}, {"a//b", "a/+/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, grant, sub string) {
		if !ValidFilter(grant) || !ValidFilter(sub) {
			return
		}
		if !FilterContains(sub, sub) && !strings.HasPrefix(sub, "$") {
			t.Fatalf("%q does not contain itself", sub)
		}
		if !FilterContains(grant, sub) {
			return
		}
		for _, fill := range []string{"x", "", "$y"} {
			topic := strings.ReplaceAll(sub, "+", fill)
			topic = strings.TrimSuffix(strings.TrimSuffix(topic, "#"), "/") + "/" + fill + "/z"
			topic = strings.TrimPrefix(topic, "/")
			if strings.HasPrefix(topic, "$") && !strings.HasPrefix(sub, "$") {
				continue // wildcards never reach $ topics
			}
			if MatchTopic(sub, topic) && !MatchTopic(grant, topic) {
				t.Fatalf("grant %q contains %q but not its topic %q", grant, sub, topic)
			}
		}
	})
}
