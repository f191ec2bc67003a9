"""A test-only plugin context: a ProbePinged event that inventory produces and payments
handles, with a handler that can be told to sleep or fail. It lets the bus tests
control timing and failures without bending the business handlers."""
