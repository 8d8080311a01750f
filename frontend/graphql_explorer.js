// Starts the vendored GraphiQL (vendor/graphiql/, loaded before this file as
// globals) against Dockyard's GraphQL endpoint with the web session: the
// cookie goes along (same origin) and the CSRF token comes from the page's
// meta tag, because the page's CSP allows no inline script.
(function () {
  "use strict";

  const DEFAULT_QUERY = `# Ctrl-Enter runs the query.
# Docs (on the left) shows the schema.
{
  currentUser {
    username
  }
  groups(first: 20) {
    nodes {
      fullPath
      dependencyProxyImagePrefix
      dependencyProxyTotalSize
    }
  }
}
`;

  const root = document.getElementById("graphiql");
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const fetcher = GraphiQL.createFetcher({
    url: new URL(root.dataset.endpoint, window.location.href).href,
    headers: { "X-CSRF-Token": csrfToken },
  });
  const logo = React.createElement(
    GraphiQL.Logo,
    null,
    React.createElement("a", { href: "/", title: "Back to Dockyard" }, "Dockyard"),
  );

  ReactDOM.createRoot(root).render(
    React.createElement(
      GraphiQL,
      {
        fetcher: fetcher,
        defaultQuery: DEFAULT_QUERY,
        defaultEditorToolsVisibility: true,
        plugins: [GraphiQLPluginExplorer.explorerPlugin()],
        // Headers typed here may hold a token: keep them out of localStorage.
        shouldPersistHeaders: false,
      },
      logo,
    ),
  );
})();
