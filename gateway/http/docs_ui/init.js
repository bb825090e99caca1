// Starts Swagger UI on /openapi.json. A file of its own, not an inline script, so the
// page's Content-Security-Policy can allow this origin's scripts only.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // Operation ids are the method names of generated clients: worth seeing.
  displayOperationId: true,
  displayRequestDuration: true,
  // The online validator badge would send the document to another site.
  validatorUrl: null,
});
