package imgfmt

// Test builders that the external tests (package imgfmt_test, which may import pkg/inspect: the
// inspector imports this package) use.
var (
	InotifyWithEventsForTest = inotifyWithEvents
	QueuedProcessForTest     = queuedProcess
	ResetProcessForTest      = resetProcess
	ObjectRoundTripForTest   = objectRoundTrip
)
