package auth_test

import (
	"fmt"
	"time"

	"github.com/courier-mqtt/courier/auth"
)

// Issue a token for an identity under a policy, then verify it the way the
// broker does, with public keys only.
func Example() {
	key, err := auth.GenerateEd25519Key("2026-11")
	if err != nil {
		panic(err)
	}
	keys, _ := auth.NewKeySet("2026-11", key)
	issuer, _ := auth.NewIssuer(auth.IssuerOptions{Keys: keys, Host: "127.0.0.1", Port: 1883})

	policy := auth.Policy{
		ClientID:  "%u-*",
		TokenTTL:  time.Hour,
		Publish:   []string{"chat/%u"},
		Subscribe: []string{"chat/+"},
	}
	now := time.Now()
	resp, err := issuer.Issue("alice", policy, "alice-phone", now)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.ClientID, resp.Username, resp.Host, resp.Port)

	verifier := auth.NewVerifier(keys.Public(), auth.VerifierOptions{})
	claims, err := verifier.Verify(resp.Password, now)
	if err != nil {
		panic(err)
	}
	perms := claims.Compile()
	fmt.Println(claims.Subject, claims.ClientID)
	fmt.Println("publish chat/alice:", perms.CanPublish("chat/alice"))
	fmt.Println("publish chat/bob:", perms.CanPublish("chat/bob"))
	fmt.Println("subscribe chat/+:", perms.CanSubscribe("chat/+"))
	fmt.Println("subscribe chat/#:", perms.CanSubscribe("chat/#"))

	_, err = verifier.Verify(resp.Password, now.Add(2*time.Hour))
	fmt.Println(err)
	// Output:
	// alice-phone alice 127.0.0.1 1883
	// alice alice-phone
	// publish chat/alice: true
	// publish chat/bob: false
	// subscribe chat/+: true
	// subscribe chat/#: false
	// auth: token expired
}

// FilterContains is the subscribe check: a requested filter must not reach
// any topic the grant does not.
func ExampleFilterContains() {
	fmt.Println(auth.FilterContains("a/+", "a/#"))
	fmt.Println(auth.FilterContains("a/#", "a/+/b"))
	fmt.Println(auth.FilterContains("#", "$SYS/#"))
	// Output:
	// false
	// true
	// false
}
