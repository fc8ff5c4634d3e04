package store

import (
	"testing"

	"go.uber.org/goleak"
)

// goleakIgnores are third-party goroutines started at package init.
var goleakIgnores = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
	goleak.IgnoreTopFunction("github.com/golang/glog.(*loggingT).flushDaemon"),
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleakIgnores...)
}
