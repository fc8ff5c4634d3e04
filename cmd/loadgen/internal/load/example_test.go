package load_test

import (
	"fmt"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
)

func ExampleParseIPs() {
	ips, err := load.ParseIPs("127.0.0.1-127.0.0.3,127.0.1.9")
	fmt.Println(ips, err)
	// Output:
	// [127.0.0.1 127.0.0.2 127.0.0.3 127.0.1.9] <nil>
}

func ExampleConfig_Validate() {
	cfg := load.DefaultConfig()
	cfg.Scenario = load.PubSub
	cfg.PayloadSize = 16
	fmt.Println(cfg.Validate())
	// Output:
	// load: invalid config: payload size 16 below the 32-byte sequence header
}
