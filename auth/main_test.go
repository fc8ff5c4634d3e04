package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// The token API tests run httptest servers; nothing may outlive them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
