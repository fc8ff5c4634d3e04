package client

import (
	"math/rand/v2"
	"time"
)

// FullJitterBackoff returns a Backoff with "full jitter": attempt n waits a
// uniformly random time in [0, min(maxDelay, minDelay*2^(n-1))], but at least
// minDelay/2 so a flapping broker is not hammered. Attempt 0 (the first after a
// lost connection) does not wait.
func FullJitterBackoff(minDelay, maxDelay time.Duration) Backoff {
	return func(attempt int) time.Duration {
		if attempt <= 0 {
			return 0
		}
		ceiling := maxDelay
		if attempt < 32 {
			if d := minDelay << (attempt - 1); d > 0 && d < maxDelay {
				ceiling = d
			}
		}
		floor := minDelay / 2
		if ceiling <= floor {
			return ceiling
		}
		return floor + rand.N(ceiling-floor+1)
	}
}
