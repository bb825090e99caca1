// The request bodies of the README's examples, typed with what openapi-typescript
// generates from /openapi.json (tests/api_docs/test_typescript_types.py copies this
// file next to the generated gateway.d.ts and runs `tsc --strict --noEmit`).
import type { components } from "./gateway";

type JobCreate = components["schemas"]["JobCreate"];
type Job = components["schemas"]["Job"];
type Results = components["schemas"]["Results"];
type Problem = components["schemas"]["Problem"];

const IMG = "YW55IGltYWdlIGJ5dGVz";
const DOC = "SW52b2ljZSBudW1iZXIgNDIu";

export const readmeBodies: JobCreate[] = [
  // Quick start: two texts to the sentiment model (an alias).
  {
    model: "sentiment",
    inputs: [
      { name: "review-1", text: "Great product, I love it" },
      { name: "review-2", text: "Terrible support, awful experience" },
    ],
    metadata: { team: "search" },
  },
  // An explainable image classification.
  {
    model: "image-classifier",
    options: { explain: true },
    inputs: [{ name: "photo", data: IMG, content_type: "image/png" }],
  },
  // One client, five providers.
  {
    model: "sentiment",
    inputs: [{ name: "r1", text: "Great product" }, { name: "r2", text: "Awful support" }],
  },
  {
    model: "product-colour",
    inputs: [
      { name: "sneaker", url: "https://cdn.example.com/sneaker.png", fields: { category: "Fashion" } },
    ],
  },
  {
    model: "churn",
    inputs: [
      { name: "cust-1", record: { age: 34, plan: "pro", monthly_spend: 89.5, tenure_months: 26 } },
      { name: "cust-2", record: { age: 51, plan: "basic", monthly_spend: 19.0, tenure_months: 3 } },
    ],
  },
  { model: "contract-ner", inputs: [{ name: "msa", ref: "3240" }, { name: "nda", ref: "4414" }] },
  {
    model: "doc-classifier",
    inputs: [{ name: "scan-1", data: DOC, content_type: "text/plain" }],
    options: {
      provider: {
        rules: [
          { type: "invoice", description: "contains invoice number, line items, and total amount" },
          { type: "receipt", description: "a shop receipt with a till number" },
        ],
      },
    },
  },
  // Webhooks.
  {
    model: "sentiment",
    inputs: [{ name: "a", text: "Lovely" }],
    webhook_url: "http://127.0.0.1:9000/hook",
  },
  // The contract's example (API.md), every input kind at once.
  {
    model: "modzy-eu/ed542963de@1.0.1",
    inputs: [
      { name: "review-1", text: "Great product" },
      { name: "photo", data: IMG, content_type: "image/png" },
      { name: "shoe", url: "https://cdn.example.com/shoe.png", fields: { product_type: "Shoes" } },
      { name: "3240", ref: "3240" },
      { name: "row-7", record: { age: 31, plan: "pro" } },
    ],
    options: { explain: false, provider: {} },
    metadata: { team: "search" },
    webhook_url: null,
  },
];

// What the types must refuse: each line below is an error, or tsc fails on the
// unused directive. (Two kinds in one input type-check: TypeScript checks excess
// properties of a union against all its members together; the gateway answers 422.)
export const refused: JobCreate[] = [
  // @ts-expect-error data without its content_type
  { model: "sentiment", inputs: [{ name: "a", data: IMG }] },
  // @ts-expect-error an input without a value
  { model: "sentiment", inputs: [{ name: "a" }] },
  // @ts-expect-error a misspelt field
  { model: "sentiment", inputs: [{ name: "a", text: "x" }], metdata: {} },
];

// Answers read with the same types: the output is told apart by its required `type`,
// timestamps are strings.
export function firstLabel(results: Results): string | null {
  const output = results.items[0]?.output;
  return output?.type === "classification" ? output.label : null;
}
export const finishedAt = (job: Job): string | null => job.finished_at;
export const problemCode = (problem: Problem): string => problem.code;
