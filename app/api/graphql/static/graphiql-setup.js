// Starts GraphiQL (with the explorer plugin) on the page, sending queries to the page's own URL.
// Adapted from strawberry-graphql's graphiql.html (MIT). Inlined into the page, whose
// Content-Security-Policy allows exactly this script by its hash.
(function () {
  "use strict";

  const EXAMPLE_QUERY = `# Kehu GraphQL
#
# Every request needs an API key: open
# "Headers" below and add
#
#   {"Authorization": "Bearer kehu_..."}
#
# then press the re-fetch button (bottom
# left) to load the schema for the docs and
# autocompletion. An embedded start saves
# its first admin key in .kehu/bootstrap-key.
# Headers are not saved in the browser.
#
# Run: Ctrl-Enter    Autocomplete: Ctrl-Space

{
  customers(first: 10) {
    edges {
      node {
        id
        firstName
        lastName
        city
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
`;

  // The query and variables live in the URL, so a link to the page shares them (never headers:
  // they carry the API key). Not as `query`: a GET with `query` runs it instead of opening the IDE.
  const parameters = new URLSearchParams(window.location.search);

  function updateURL(name, value) {
    if (value) {
      parameters.set(name, value);
    } else {
      parameters.delete(name);
    }
    const search = parameters.toString();
    history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });

  function KehuGraphiQL() {
    const [query, setQuery] = React.useState(parameters.get("q") || EXAMPLE_QUERY);
    const [variables, setVariables] = React.useState(parameters.get("variables") || undefined);
    const explorer = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      query: query,
      variables: variables,
      defaultEditorToolsVisibility: true,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      // An API key in the headers would otherwise stay in the browser's storage for good.
      shouldPersistHeaders: false,
      onEditQuery: function (value) {
        setQuery(value);
        updateURL("q", value);
      },
      onEditVariables: function (value) {
        setVariables(value);
        updateURL("variables", value);
      },
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(KehuGraphiQL),
  );
})();
