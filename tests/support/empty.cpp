// Keeps kpipe_test_support a library while it has no other sources.
