package auth_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// The token API as a Courier mobile client sees it: a bearer API key in,
// connect credentials out.
func ExampleTokenAPI() {
	key, _ := auth.GenerateEd25519Key("k1")
	keys, _ := auth.NewKeySet("k1", key)
	issuer, _ := auth.NewIssuer(auth.IssuerOptions{Keys: keys, Host: "mqtt.example.com", Port: 8883})
	apiKey, entry, _ := auth.NewAPIKeyEntry("app") // store entry; hand out apiKey
	authn, _ := auth.NewAPIKeyAuthenticator([]auth.APIKeyEntry{entry})
	api, err := auth.NewTokenAPI(auth.TokenAPIOptions{
		Authenticator: authn,
		Issuer:        issuer,
		Policies: auth.Policies{Default: &auth.Policy{
			ClientID: "%u-*", KeepAlive: 60 * time.Second, Subscribe: []string{"chat/+"},
		}},
		PerIdentity: auth.RateLimit{Rate: 1, Burst: 5},
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+auth.TokenPath+"?clientId=app-phone", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var tr auth.TokenResponse
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	fmt.Println(resp.StatusCode, tr.ClientID, tr.Username, tr.Host, tr.Port, tr.KeepAlive, tr.Password != "")

	resp2, err := srv.Client().Get(srv.URL + auth.TokenPath) // no API key
	if err != nil {
		panic(err)
	}
	defer resp2.Body.Close()
	body, _ := io.ReadAll(resp2.Body)
	fmt.Print(resp2.StatusCode, " ", string(body))
	// Output:
	// 200 app-phone app mqtt.example.com 8883 60 true
	// 401 {"error":{"code":"unauthorized","message":"missing or invalid API key"}}
}
