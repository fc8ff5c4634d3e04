package report_test

import (
	"fmt"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/report"
)

func ExampleLine() {
	fmt.Println(report.Line(load.Progress{
		Elapsed: 2500 * time.Millisecond, Phase: "publish", Connected: 2, Target: 2,
		Published: 20000, PubRate: 10000, Received: 19990, RecvRate: 9995,
	}))
	// Output:
	//    2.5s publish  conns 2/2  pub 20000 (10000/s)  recv 19990 (9995/s)
}
