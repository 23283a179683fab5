// Starts GraphiQL against this server's /graphql, over HTTP for queries
// and mutations and over a websocket for subscriptions. Send the token
// from the login mutation as {"Authorization": "Bearer <token>"} in the
// headers pane.
(function () {
  'use strict';
  var url = new URL('graphql', window.location.href).href;
  var fetcher = GraphiQL.createFetcher({
    url: url,
    subscriptionUrl: url.replace(/^http/, 'ws'),
  });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      isHeadersEditorEnabled: true,
      // A session token is a credential: keep it out of localStorage.
      shouldPersistHeaders: false,
      defaultHeaders: '{\n  "Authorization": "Bearer <token from the login mutation>"\n}',
      inputValueDeprecation: true,
    }),
  );
})();
