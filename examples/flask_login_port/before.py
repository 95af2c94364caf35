"""A small Flask-Login + Flask-SQLAlchemy app, as it was before moving to flask-lucia.

Integer user ids, posts with an author foreign key, Werkzeug password hashes.
``docs/migrating-from-flask-login.rst`` ports it; ``after.py`` is the result.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, abort, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from werkzeug.security import check_password_hash, generate_password_hash


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(255), unique=True, nullable=False)
    username = db.Column(db.String(64), unique=True, nullable=False)
    password_hash = db.Column(db.String(255))
    posts = db.relationship("Post", back_populates="author")


class Post(db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    author_id = db.Column(db.Integer, db.ForeignKey(User.id), nullable=False)
    author = db.relationship(User, back_populates="posts")


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="dev-only-secret", SQLALCHEMY_DATABASE_URI=database_url)
    db.init_app(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "login_page"  # login_required redirects here

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id))

    @app.post("/register")
    def register() -> Any:
        user = User(
            email=request.form["email"].lower(),
            username=request.form["username"],
            password_hash=generate_password_hash(request.form["password"]),
        )
        db.session.add(user)
        db.session.commit()
        return redirect("/posts")

    @app.get("/login", endpoint="login_page")
    def login_page() -> str:
        return "<form method=post><input name=email><input name=password type=password></form>"

    @app.post("/login")
    def login() -> Any:
        email = request.form["email"].lower()
        user = db.session.scalar(sa.select(User).filter_by(email=email))
        if user is None or not check_password_hash(user.password_hash, request.form["password"]):
            abort(400)
        login_user(user, remember=bool(request.form.get("remember")))
        return redirect("/posts")

    @app.get("/posts")
    @login_required  # type: ignore[untyped-decorator]
    def posts() -> str:
        titles = ", ".join(post.title for post in current_user.posts)
        return f"{current_user.username}: {titles}"

    return app
