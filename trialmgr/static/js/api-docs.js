// Swagger UI for /api/v1/docs, from vendored files; no outside validator.
(function () {
  var el = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: el.dataset.specUrl,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
  });
})();
