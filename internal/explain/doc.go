// Package explain shows how a transformer reads a text: which tokens each
// attention head attends to, how far each token's vector moves from its
// static (input) embedding layer by layer, and why texts come out similar.
//
// Run encodes the texts in one forward pass watched by an
// encoder.Observer, so the attention probabilities, token states and
// expert routes are those of the pass that produced the embeddings, not of
// a second implementation. Write renders the pictures with gonum/plot
// (attention.png/.svg, context.png, similarity.png, routes.png for
// mixture-of-experts models), a self-contained report.html and
// explain.json with every number behind them; each file appears
// atomically.
package explain
